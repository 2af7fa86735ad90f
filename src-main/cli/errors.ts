/** A failure the CLI reports as one line on stderr, then exits non-zero. */
export class CliError extends Error {
  constructor(
    message: string,
    /** 2: the command line was wrong; 1: the command failed. */
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export const usageError = (message: string) => new CliError(message, 2);
