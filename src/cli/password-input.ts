import { createInterface } from 'node:readline';

/**
 * Passwords come from a prompt on a terminal (not echoed) or from standard input otherwise, never from argv where
 * `ps` and shell history would show them.
 */
export async function readPassword(prompt: string, confirm: boolean): Promise<string> {
  if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    const first = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
    if (first === '') throw new Error('no password on standard input');
    return first;
  }
  const first = await promptHidden(prompt);
  if (confirm) {
    const again = await promptHidden('Repeat password: ');
    if (again !== first) throw new Error('passwords do not match');
  }
  if (first === '') throw new Error('empty password');
  return first;
}

function promptHidden(prompt: string): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    const write = (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput.bind(rl);
    let prompted = false;
    (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s: string) => {
      if (!prompted) {
        prompted = true;
        write(s);
      }
    };
    rl.question(prompt, (answer) => {
      process.stderr.write('\n');
      rl.close();
      resolve(answer);
    });
  });
}
