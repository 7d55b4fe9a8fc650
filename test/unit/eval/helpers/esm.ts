// Jest's module registry cannot require() ES modules on Node 20 (hyparquet is ESM-only; plain Node >= 20.19
// can). Test files route the package through this loader with
//   jest.mock('hyparquet', () => require('./helpers/esm').loadEsm('hyparquet'))
// It resolves the package's "default" export, transpiles each module to CommonJS with TypeScript and
// evaluates it once. If jest.config.js transforms hyparquet itself, these mocks become unnecessary.
import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';

const cache = new Map<string, { exports: unknown }>();

function packageEntry(root: string, pkg: { exports?: any; main?: string }): string {
  const dot = pkg.exports?.['.'];
  const target = typeof dot === 'string' ? dot : (dot?.default?.default ?? dot?.default ?? dot?.require ?? pkg.main ?? 'index.js');
  return path.join(root, typeof target === 'string' ? target : 'index.js');
}

/** node_modules/<name> found walking up from dir (packages with an exports map hide package.json from require.resolve). */
function packageRoot(name: string, dir: string): string {
  for (let d = dir; ; d = path.dirname(d)) {
    const candidate = path.join(d, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (path.dirname(d) === d) throw new Error(`cannot find package ${name} from ${dir}`);
  }
}

function resolveSpecifier(spec: string, fromDir: string): string {
  if (spec.startsWith('.')) return path.resolve(fromDir, spec);
  const parts = spec.split('/');
  const name = spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
  const sub = parts.slice(spec.startsWith('@') ? 2 : 1).join('/');
  const root = packageRoot(name, fromDir);
  if (sub) return path.join(root, sub);
  return packageEntry(root, JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')));
}

function loadFile(file: string): unknown {
  const hit = cache.get(file);
  if (hit) return hit.exports;
  const mod = { exports: {} as Record<string, unknown> };
  cache.set(file, mod);
  const source = fs.readFileSync(file, 'utf8');
  const out = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, allowJs: true },
    fileName: file.replace(/\.js$/, '.ts'),
  }).outputText;
  const dir = path.dirname(file);
  const localRequire = (spec: string): unknown => {
    if (spec.startsWith('node:') || !spec.startsWith('.')) {
      try {
        return require(spec);
      } catch {
        return loadFile(resolveSpecifier(spec, dir));
      }
    }
    return loadFile(resolveSpecifier(spec, dir));
  };
  new Function('exports', 'require', 'module', '__filename', '__dirname', out)(mod.exports, localRequire, mod, file, dir);
  return mod.exports;
}

/** An ESM package (or a file inside one, e.g. 'hyparquet/src/column.js') as a CommonJS module object. */
export function loadEsm(specifier: string): unknown {
  return loadFile(resolveSpecifier(specifier, process.cwd()));
}
