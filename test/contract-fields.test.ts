import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { REPO_ROOT } from '@prompt-valet/testkit';

/**
 * docs/contract.md's records table names every field of every record section
 * as core's records.ts types it (the types the tools write through, with no
 * index signature to hide a field behind). A field added to a section and
 * not to the table fails here.
 */
const RECORDS_TS = path.join(REPO_ROOT, 'packages', 'core', 'src', 'records.ts');
const CONTRACT_MD = path.join(REPO_ROOT, 'docs', 'contract.md');

/** Each interface and the table row (by its section name) that must list its fields. */
const ROW_OF_INTERFACE: Record<string, string> = {
  ClaimSection: 'claim',
  TargetSection: 'target',
  FrontMatter: 'target',
  CheckoutSection: 'checkout',
  AgentSection: 'agent',
  AppliedLimits: 'agent',
  PublishSection: 'publish',
  SettleSection: 'settle',
  RecordError: 'error',
};

interface InterfaceFields {
  fields: string[];
  hasIndexSignature: boolean;
}

function interfacesOf(file: string): Map<string, InterfaceFields> {
  const source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const out = new Map<string, InterfaceFields>();
  for (const stmt of source.statements) {
    if (!ts.isInterfaceDeclaration(stmt)) continue;
    const fields: string[] = [];
    let hasIndexSignature = false;
    for (const member of stmt.members) {
      if (ts.isIndexSignatureDeclaration(member)) hasIndexSignature = true;
      else if (ts.isPropertySignature(member) && (ts.isIdentifier(member.name) || ts.isStringLiteral(member.name))) fields.push(member.name.text);
    }
    out.set(stmt.name.text, { fields, hasIndexSignature });
  }
  return out;
}

/** The records table's rows: section name → the text of its row. */
function tableRows(markdown: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of markdown.split('\n')) {
    const m = /^\| `([a-z_]+)` \|/.exec(line);
    if (m) rows.set(m[1]!, line);
  }
  return rows;
}

t.test('docs/contract.md lists every field of every record section', async (t) => {
  const interfaces = interfacesOf(RECORDS_TS);
  const rows = tableRows(fs.readFileSync(CONTRACT_MD, 'utf8'));
  for (const [name, section] of Object.entries(ROW_OF_INTERFACE)) {
    const iface = interfaces.get(name);
    if (!iface) {
      t.fail(`records.ts has no interface ${name}`);
      continue;
    }
    t.ok(iface.fields.length > 0, `${name} has fields`);
    const row = rows.get(section);
    if (!row) {
      t.fail(`docs/contract.md has no row for \`${section}\``);
      continue;
    }
    const missing = iface.fields.filter((f) => !row.includes(`\`${f}\``));
    t.same(missing, [], `the \`${section}\` row names every field of ${name}`);
  }
});

t.test('record sections hide no field behind an index signature', async (t) => {
  const interfaces = interfacesOf(RECORDS_TS);
  for (const name of Object.keys(ROW_OF_INTERFACE)) {
    // Front matter is the operator's: keys this version does not know pass through.
    if (name === 'FrontMatter') continue;
    t.notOk(interfaces.get(name)?.hasIndexSignature, `${name} lists its fields`);
  }
});
