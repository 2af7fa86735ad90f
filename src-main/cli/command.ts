export interface Command {
  /** As typed, e.g. "serve" or "target serve". */
  name: string;
  summary: string;
  help: string;
  /** Resolves to the exit code. Throws CliError for a one-line failure. */
  run(argv: string[]): Promise<number>;
}
