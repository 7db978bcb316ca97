// The TextMate grammar, run by VS Code's own engine (vscode-textmate with the Oniguruma regex
// library as WebAssembly), colours a sample file as expected.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as oniguruma from 'vscode-oniguruma';
import * as textmate from 'vscode-textmate';

const root = path.join(__dirname, '..', '..');

async function grammar(): Promise<textmate.IGrammar> {
  const wasm = fs.readFileSync(require.resolve('vscode-oniguruma/release/onig.wasm'));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const registry = new textmate.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns: string[]) => new oniguruma.OnigScanner(patterns),
      createOnigString: (s: string) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async (scope: string) => {
      if (scope !== 'source.cnn') return null;
      const file = path.join(root, 'syntaxes', 'cnn.tmLanguage.json');
      return textmate.parseRawGrammar(fs.readFileSync(file, 'utf8'), file);
    },
  });
  const g = await registry.loadGrammar('source.cnn');
  assert.ok(g, 'the grammar did not load');
  return g;
}

/** Every token of the sample as [line, text, innermost scope]. */
async function tokens(): Promise<Array<[number, string, string]>> {
  const g = await grammar();
  const lines = fs.readFileSync(path.join(root, 'test', 'sample.cnn'), 'utf8').split('\n');
  const out: Array<[number, string, string]> = [];
  let stack = textmate.INITIAL;
  lines.forEach((line, i) => {
    const r = g.tokenizeLine(line, stack);
    for (const t of r.tokens) {
      const text = line.substring(t.startIndex, t.endIndex);
      if (text.trim() !== '') out.push([i, text, t.scopes[t.scopes.length - 1]]);
    }
    stack = r.ruleStack;
  });
  return out;
}

function scopeOf(all: Array<[number, string, string]>, line: number, text: string): string {
  const t = all.find(([l, x]) => l === line && x === text);
  assert.ok(t, `no token '${text}' on line ${line}: ${JSON.stringify(all.filter(([l]) => l === line))}`);
  return t[2];
}

test('keywords, sizes, numbers, comments, strings and names get their scopes', async () => {
  const all = await tokens();
  const expect: Array<[number, string, string]> = [
    [0, '// A sample for the grammar test', 'comment.line.double-slash.cnn'],
    [1, 'input', 'support.function.layer.cnn'],
    [1, '?x?x1', 'constant.numeric.size.cnn'],
    [2, 'let', 'keyword.control.let.cnn'],
    [2, 'unit', 'entity.name.function.block.cnn'],
    [2, 'conv', 'support.function.layer.cnn'],
    [2, '3x3', 'constant.numeric.size.cnn'],
    [2, 'same', 'keyword.other.option.cnn'],
    [2, 'relu', 'support.constant.activation.cnn'],
    [3, '6', 'constant.numeric.cnn'],
    [3, '5x5', 'constant.numeric.size.cnn'],
    [3, 's', 'keyword.other.option.cnn'],
    [3, '2', 'constant.numeric.size.cnn'],
    [4, 'unit', 'entity.name.function.call.cnn'],
    [4, ';', 'punctuation.separator.cnn'],
    [4, 'maxpool', 'support.function.layer.cnn'],
    [4, 'sobel', 'support.function.kernel.cnn'],
    [5, 'dropout', 'support.function.layer.cnn'],
    [5, '0.25', 'constant.numeric.cnn'],
    [6, 'sepconv', 'support.function.layer.cnn'],
    [6, 'groups', 'keyword.other.option.cnn'],
    [6, 'shortcut', 'keyword.control.block.cnn'],
    [6, 'dwconv', 'support.function.layer.cnn'],
    [6, 'maxout', 'support.function.layer.cnn'],
    [7, 'softmax', 'support.constant.activation.cnn'],
    [8, 'train', 'keyword.control.train.cnn'],
    [9, 'data', 'variable.other.setting.cnn'],
    [9, '"path/to folder"', 'string.quoted.double.cnn'],
    [10, 'adam', 'constant.language.value.cnn'],
    [11, '1e-3', 'constant.numeric.cnn'],
  ];
  for (const [line, text, scope] of expect) {
    assert.equal(scopeOf(all, line, text), scope, `'${text}' on line ${line}`);
  }
  // The nested block comment is one comment to its last '*)'.
  const comment = all.filter(([l, , s]) => l === 3 && s === 'comment.block.cnn').map(([, x]) => x).join('');
  assert.equal(comment, '(* a (* nested *) note *)');
});

test('a name that merely contains a keyword is not coloured as one', async () => {
  const g = await grammar();
  const line = 'convolution 3 relux';
  const r = g.tokenizeLine(line, textmate.INITIAL);
  const scopes = r.tokens.map((t) => [line.substring(t.startIndex, t.endIndex), t.scopes[t.scopes.length - 1]]);
  assert.deepEqual(scopes.find(([x]) => x === 'convolution'), ['convolution', 'entity.name.function.call.cnn']);
  assert.deepEqual(scopes.find(([x]) => x === 'relux'), ['relux', 'entity.name.function.call.cnn']);
});
