// Runs a part's CLI from TypeScript source through tsx in a checkout, or from dist/ after
// `npm run build` when tsx (a dev dependency) is not installed.
import { existsSync } from 'node:fs';

export async function launch(part) {
  const source = new URL(`../${part}/cli.ts`, import.meta.url);
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    register = undefined;
  }
  if (register && existsSync(source)) {
    register();
    await import(source.href);
    return;
  }
  const built = new URL(`../dist/${part}/cli.js`, import.meta.url);
  if (!existsSync(built)) {
    console.error(`scanbox: neither tsx nor ${built.pathname} is available; run \`npm ci\` or \`npm run build\``);
    process.exit(1);
  }
  await import(built.href);
}
