/** A DNS resolver in memory: each name answers the addresses set for it, or fails as set (e.g. ENOTFOUND). */
export class FakeDns {
  private readonly answers = new Map<string, string[] | { code: string }>();
  /** Every name asked, in order. */
  readonly asked: string[] = [];

  set(name: string, answer: string[] | { code: string }): void {
    this.answers.set(name, answer);
  }

  readonly resolve = async (name: string): Promise<string[]> => {
    this.asked.push(name);
    const answer = this.answers.get(name) ?? { code: 'ENOTFOUND' };
    if (Array.isArray(answer)) return [...answer];
    throw Object.assign(new Error(`queryA ${answer.code} ${name}`), { code: answer.code });
  };
}
