/**
 * Writes config/ftpsd.example.yaml from the schema: every key with its default, commented with the schema's own doc
 * comments, so the example can never drift from what the server accepts. `--check` exits 1 when the file is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { Document, isMap, isPair, isScalar, type Pair } from 'yaml';
import { defaultConfig } from '../src/config/schema.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const schemaPath = `${root}src/config/schema.ts`;
const examplePath = `${root}config/ftpsd.example.yaml`;

const HEADER = ` ftpsd configuration: every key with its default value.
 Copy to config/ftpsd.yaml (read automatically) or pass --config FILE. Unknown keys are errors.
 Any key can be overridden from the environment: FTPSD_<SECTION>_<KEY>, e.g. FTPSD_PASV_EXTERNAL_ADDRESS=203.0.113.7.
 Durations end in Ms (milliseconds), Seconds or Days; sizes in Bytes. Relative paths are relative to the working
 directory. Generated from src/config/schema.ts by scripts/gen-example-config.ts.`;

/** Doc comments of the schema's keys, by dotted path. */
export function schemaComments(source: string): Map<string, string> {
  const file = ts.createSourceFile('schema.ts', source, ts.ScriptTarget.ES2022, true);
  const out = new Map<string, string>();
  const visitObject = (obj: ts.ObjectLiteralExpression, prefix: string) => {
    for (const prop of obj.properties) {
      if (!ts.isPropertyAssignment(prop)) continue;
      const name = prop.name.getText(file);
      const path = prefix === '' ? name : `${prefix}.${name}`;
      const ranges = ts.getLeadingCommentRanges(source, prop.getFullStart()) ?? [];
      const docs = ranges
        .map((r) => source.slice(r.pos, r.end))
        .filter((c) => c.startsWith('/**'))
        .map((c) => c.replace(/^\/\*\*\s?|\s*\*\/$/g, '').split('\n').map((l) => l.replace(/^\s*\*\s?/, '')).join(' ').trim());
      if (docs.length > 0) out.set(path, docs.join(' '));
      const inner = findObjectLiteral(prop.initializer);
      if (inner !== null) visitObject(inner, path);
    }
  };
  const findObjectLiteral = (node: ts.Node): ts.ObjectLiteralExpression | null => {
    if (ts.isCallExpression(node)) {
      const arg = node.arguments[0];
      if (arg !== undefined && ts.isObjectLiteralExpression(arg)) return arg;
      return ts.isPropertyAccessExpression(node.expression) ? findObjectLiteral(node.expression.expression) : null;
    }
    if (ts.isPropertyAccessExpression(node)) return findObjectLiteral(node.expression);
    return null;
  };
  file.forEachChild(function visit(node) {
    if (ts.isVariableDeclaration(node) && node.name.getText(file) === 'configSchema' && node.initializer) {
      const obj = findObjectLiteral(node.initializer);
      if (obj !== null) visitObject(obj, '');
    }
    node.forEachChild(visit);
  });
  return out;
}

export function renderExample(): string {
  const comments = schemaComments(readFileSync(schemaPath, 'utf8'));
  const doc = new Document(defaultConfig());
  doc.commentBefore = HEADER;
  const annotate = (node: unknown, prefix: string) => {
    if (!isMap(node)) return;
    for (const item of node.items as Pair[]) {
      if (!isPair(item) || !isScalar(item.key)) continue;
      const path = prefix === '' ? String(item.key.value) : `${prefix}.${String(item.key.value)}`;
      const c = comments.get(path);
      if (c !== undefined) item.key.commentBefore = ` ${c}`;
      if (prefix === '') item.key.spaceBefore = true;
      annotate(item.value, path);
    }
  };
  annotate(doc.contents, '');
  return doc.toString({ lineWidth: 0 });
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = renderExample();
  if (process.argv.includes('--check')) {
    const current = readFileSync(examplePath, 'utf8');
    if (current !== text) {
      console.error('config/ftpsd.example.yaml is stale: run npx tsx scripts/gen-example-config.ts');
      process.exit(1);
    }
  } else {
    writeFileSync(examplePath, text);
    console.log(`wrote ${examplePath}`);
  }
}
