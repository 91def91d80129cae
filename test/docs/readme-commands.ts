/**
 * The shell commands of a Markdown document, in order: every ```bash block split into commands (a command spans
 * `\` continuations and multi-line quoted strings), each with the comment that goes with it (after it on its
 * line, on the indented comment lines below it, or the output shown on a `# ...` line right under it).
 */

export interface DocCommand {
  /** 1-based line of the command's first line in the document. */
  line: number;
  /** Index of the bash block it is in (0 = the first). */
  block: number;
  command: string;
  /** Its comment text, without the `#`s, lines joined by a space; '' when none. */
  comment: string;
}

/** Where an unquoted `#` starts a comment in a line, given the quote open at its start; and the quote open at its end. */
function scan(line: string, open: string | null): { commentAt: number; open: string | null } {
  let quote = open;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"') i++;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '\\') i++;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) return { commentAt: i, open: null };
  }
  return { commentAt: -1, open: quote };
}

export function shellCommands(markdown: string): DocCommand[] {
  const lines = markdown.split('\n');
  const commands: DocCommand[] = [];
  let block = -1;
  let inBlock = false;
  let current: DocCommand | null = null;
  let open: string | null = null;
  let continued = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (!inBlock) {
      if (/^```(bash|sh|shell)\s*$/.test(line)) {
        inBlock = true;
        block++;
      }
      continue;
    }
    if (line.startsWith('```')) {
      inBlock = false;
      current = null;
      continue;
    }
    const text: string = open || continued ? line : line.trimStart();
    if (!open && !continued && (text === '' || text.startsWith('#'))) {
      // A comment line under a command belongs to it (an indented note, or the output it prints).
      if (current && text.startsWith('#')) current.comment = `${current.comment} ${text.replace(/^#\s?/, '')}`.trim();
      if (text === '') current = null;
      continue;
    }
    const { commentAt, open: stillOpen } = scan(text, open);
    const code: string = commentAt >= 0 ? text.slice(0, commentAt).trimEnd() : text;
    const comment = commentAt >= 0 ? text.slice(commentAt + 1).trim() : '';
    if (open || continued) {
      if (!current) throw new Error(`line ${i + 1}: a continuation without a command`);
      current.command += open ? `\n${code}` : ` ${code.trim()}`;
      if (comment) current.comment = `${current.comment} ${comment}`.trim();
    } else {
      current = { line: i + 1, block, command: code, comment };
      commands.push(current);
    }
    open = stillOpen;
    continued = !open && current.command.endsWith('\\');
    if (continued) current.command = current.command.slice(0, -1).trimEnd();
  }
  return commands;
}
