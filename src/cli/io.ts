/** Where the CLI writes: stdout and stderr in a terminal, buffers in tests. */
export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly color?: boolean;
}
