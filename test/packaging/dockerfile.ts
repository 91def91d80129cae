/**
 * A small Dockerfile reader for replaying an image build natively: CI has no Docker engine, so the image's
 * behaviour is checked by doing what its Dockerfile says, in a temporary directory, with the host's Node.
 * It understands the instructions our Dockerfile uses and refuses any other, so that a new instruction
 * cannot be silently left out of the replay.
 */

export type Instruction =
  | { kind: 'ARG'; name: string; value?: string }
  | { kind: 'ENV'; vars: Array<[string, string]> }
  | { kind: 'WORKDIR'; dir: string }
  | { kind: 'COPY'; from?: string; chown?: string; sources: string[]; dest: string }
  | { kind: 'RUN'; command: string }
  | { kind: 'USER'; user: string }
  | { kind: 'EXPOSE'; ports: number[] }
  | { kind: 'HEALTHCHECK'; options: Record<string, string>; command: string[] }
  | { kind: 'ENTRYPOINT'; command: string[] }
  | { kind: 'CMD'; command: string[] };

export interface Stage {
  image: string;
  name?: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  globalArgs: Map<string, string | undefined>;
  stages: Stage[];
}

/** Joins continuation lines and drops comments and parser directives. */
function logicalLines(text: string): string[] {
  const lines: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const trimmed = raw.trim();
    if (trimmed.startsWith('#') || (trimmed === '' && current === '')) continue;
    if (trimmed.endsWith('\\')) {
      current += `${trimmed.slice(0, -1)} `;
      continue;
    }
    current += trimmed;
    if (current.trim() !== '') lines.push(current.trim());
    current = '';
  }
  if (current.trim() !== '') lines.push(current.trim());
  return lines;
}

/** Splits `--flag=value` options off the front of an instruction's arguments. */
function takeFlags(rest: string): { flags: Record<string, string>; remainder: string } {
  const flags: Record<string, string> = {};
  let remainder = rest;
  for (;;) {
    const match = /^--([a-z-]+)=(\S+)\s+/.exec(remainder);
    if (!match) return { flags, remainder };
    flags[match[1]] = match[2];
    remainder = remainder.slice(match[0].length);
  }
}

function jsonArray(text: string, where: string): string[] {
  const value: unknown = JSON.parse(text);
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new Error(`${where}: expected the exec form, a JSON array of strings`);
  }
  return value;
}

/** KEY=value pairs, values optionally double-quoted (the only ENV form we write). */
function envPairs(text: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  const re = /([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g;
  for (const match of text.matchAll(re)) {
    const raw = match[2];
    pairs.push([match[1], raw.startsWith('"') ? (JSON.parse(raw) as string) : raw]);
  }
  if (pairs.length === 0) throw new Error(`ENV ${text}: expected KEY=value pairs`);
  return pairs;
}

export function parseDockerfile(text: string): Dockerfile {
  const globalArgs = new Map<string, string | undefined>();
  const stages: Stage[] = [];
  for (const line of logicalLines(text)) {
    const match = /^([A-Za-z]+)\s+([\s\S]*)$/.exec(line);
    if (!match) throw new Error(`cannot read Dockerfile line: ${line}`);
    const keyword = match[1].toUpperCase();
    const rest = match[2].trim();
    if (keyword === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      if (!from) throw new Error(`FROM ${rest}: unsupported form`);
      stages.push({ image: from[1], name: from[2], instructions: [] });
      continue;
    }
    if (keyword === 'ARG' && stages.length === 0) {
      const [name, value] = rest.split('=', 2);
      globalArgs.set(name, value);
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`${keyword} before the first FROM`);
    stage.instructions.push(parseInstruction(keyword, rest));
  }
  return { globalArgs, stages };
}

function parseInstruction(keyword: string, rest: string): Instruction {
  switch (keyword) {
    case 'ARG': {
      const [name, value] = rest.split('=', 2);
      return { kind: 'ARG', name, value };
    }
    case 'ENV':
      return { kind: 'ENV', vars: envPairs(rest) };
    case 'WORKDIR':
      return { kind: 'WORKDIR', dir: rest };
    case 'COPY': {
      const { flags, remainder } = takeFlags(rest);
      const unknown = Object.keys(flags).filter((f) => f !== 'from' && f !== 'chown');
      if (unknown.length > 0) throw new Error(`COPY --${unknown[0]} is not replayed`);
      const parts = remainder.split(/\s+/);
      if (parts.length < 2) throw new Error(`COPY ${rest}: needs a source and a destination`);
      return { kind: 'COPY', from: flags.from, chown: flags.chown, sources: parts.slice(0, -1), dest: parts.at(-1)! };
    }
    case 'RUN': {
      // --mount options (e.g. the npm cache mount) change how the build runs, not what it makes.
      const { flags, remainder } = takeFlags(rest);
      const unknown = Object.keys(flags).filter((f) => f !== 'mount');
      if (unknown.length > 0) throw new Error(`RUN --${unknown[0]} is not replayed`);
      if (remainder.startsWith('[')) throw new Error('RUN in exec form is not replayed');
      return { kind: 'RUN', command: remainder };
    }
    case 'USER':
      return { kind: 'USER', user: rest };
    case 'EXPOSE':
      return { kind: 'EXPOSE', ports: rest.split(/\s+/).map((p) => Number.parseInt(p, 10)) };
    case 'HEALTHCHECK': {
      const { flags, remainder } = takeFlags(`${rest} `);
      const cmd = /^CMD\s+(\[[\s\S]*\])\s*$/.exec(remainder.trim());
      if (!cmd) throw new Error('HEALTHCHECK: expected CMD in exec form');
      return { kind: 'HEALTHCHECK', options: flags, command: jsonArray(cmd[1], 'HEALTHCHECK') };
    }
    case 'ENTRYPOINT':
      return { kind: 'ENTRYPOINT', command: jsonArray(rest, 'ENTRYPOINT') };
    case 'CMD':
      return { kind: 'CMD', command: jsonArray(rest, 'CMD') };
    default:
      throw new Error(`Dockerfile instruction ${keyword} is not replayed: teach test/packaging/dockerfile.ts about it`);
  }
}

/** Expands $NAME and ${NAME} the way the Dockerfile's ARG/ENV substitution does (no modifiers). */
export function expandVars(text: string, vars: Record<string, string | undefined>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, a: string, b: string) => vars[a ?? b] ?? '');
}

/** Docker's .dockerignore rules, reduced to what ours uses: path prefixes, `*` within a segment, `**`. */
export function isIgnored(relPath: string, patterns: string[]): boolean {
  let ignored = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const pattern = (negate ? raw.slice(1) : raw).replace(/^\/+|\/+$/g, '');
    const source = pattern
      .split('/')
      .map((seg) =>
        seg === '**'
          ? '.*'
          : seg
              .replace(/[.+^${}()|[\]\\]/g, '\\$&')
              .replace(/\*/g, '[^/]*')
              .replace(/\?/g, '[^/]'),
      )
      .join('/');
    // A pattern matches a path or anything beneath it.
    if (new RegExp(`^${source}(/.*)?$`).test(relPath)) ignored = !negate;
  }
  return ignored;
}

export function dockerignorePatterns(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}
