import { isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Scalar } from "yaml";
import type { PyValue } from "../pyjson/value.ts";

/**
 * YAML as PyYAML's safe_load reads it (YAML 1.1), for `.oac` control files.
 * The `yaml` package's own 1.1 schema differs where control files notice:
 * it reads `y`/`n` as booleans, `1e3` as a number and accepts `0o755`, all of
 * which PyYAML leaves as strings. So the document is parsed with every scalar
 * kept as text, and plain scalars are resolved here with PyYAML's patterns.
 */

/** A YAML 1.1 timestamp (PyYAML makes a date): not an int, bool or string. */
export class YamlTimestamp {
  constructor(readonly text: string) {}
  toString() {
    return this.text;
  }
}

export type YamlValue = PyValue | YamlTimestamp;

const BOOL = /^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/;
const FLOAT =
  /^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;
const INT =
  /^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$/;
const NULL = /^(?:~|null|Null|NULL|)$/;
const TIMESTAMP =
  /^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$/;

/** PyYAML's construct_yaml_int. */
export function yamlInt(text: string): bigint {
  let v = text.replaceAll("_", "");
  let sign = 1n;
  if (v[0] === "-") sign = -1n;
  if (v[0] === "-" || v[0] === "+") v = v.slice(1);
  if (v === "0") return 0n;
  if (v.startsWith("0b")) return sign * BigInt(v);
  if (v.startsWith("0x")) return sign * BigInt(v);
  if (v[0] === "0") return sign * BigInt(`0o${v.slice(1)}`);
  if (v.includes(":")) {
    let total = 0n;
    for (const part of v.split(":")) total = total * 60n + BigInt(part);
    return sign * total;
  }
  return sign * BigInt(v);
}

/** PyYAML's construct_yaml_float. */
export function yamlFloat(text: string): number {
  let v = text.replaceAll("_", "").toLowerCase();
  let sign = 1;
  if (v[0] === "-") sign = -1;
  if (v[0] === "-" || v[0] === "+") v = v.slice(1);
  if (v === ".inf") return sign * Infinity;
  if (v === ".nan") return NaN;
  if (v.includes(":")) {
    let total = 0;
    for (const part of v.split(":")) total = total * 60 + Number(part);
    return sign * total;
  }
  return sign * Number(v);
}

/** Resolve an untagged plain scalar the way PyYAML's implicit resolvers do. */
export function resolvePlain(text: string): YamlValue {
  if (BOOL.test(text)) return ["yes", "true", "on"].includes(text.toLowerCase());
  if (FLOAT.test(text)) return yamlFloat(text);
  if (INT.test(text)) return yamlInt(text);
  if (NULL.test(text)) return null;
  if (TIMESTAMP.test(text)) return new YamlTimestamp(text);
  return text;
}

const TAG = "tag:yaml.org,2002:";

function resolveScalar(node: Scalar): YamlValue {
  const text = String(node.value);
  switch (node.tag) {
    case undefined:
      return node.type === "PLAIN" ? resolvePlain(text) : text;
    case `${TAG}str`:
      return text;
    case `${TAG}int`:
      return yamlInt(text);
    case `${TAG}float`:
      return yamlFloat(text);
    case `${TAG}bool`:
      return BOOL.test(text) ? ["yes", "true", "on"].includes(text.toLowerCase()) : text;
    case `${TAG}null`:
      return null;
    default:
      throw new Error(`could not determine a constructor for the tag '${node.tag}'`);
  }
}

function resolveNode(node: unknown, doc: Document): YamlValue {
  if (node === null || node === undefined) return null;
  if (isAlias(node)) return resolveNode(node.resolve(doc), doc);
  if (isScalar(node)) return resolveScalar(node);
  const plain = (v: YamlValue): PyValue => (v instanceof YamlTimestamp ? v.text : v);
  if (isSeq(node)) return node.items.map((n) => plain(resolveNode(n, doc)));
  if (isMap(node)) {
    const m = new Map<string, PyValue>();
    for (const p of node.items) m.set(String(plain(resolveNode(p.key, doc))), plain(resolveNode(p.value, doc)));
    return m;
  }
  throw new Error("unsupported YAML node");
}

export type YamlMapping = Map<string, YamlValue>;

/**
 * `yaml.safe_load(text)` for a control file: a mapping, or null for an
 * empty or falsy document. Throws on YAML errors and on non-mappings.
 */
export function loadYamlMapping(text: string): YamlMapping | "not-a-mapping" {
  const doc = parseDocument(text, { schema: "failsafe", uniqueKeys: false, prettyErrors: false });
  if (doc.errors.length) throw new Error(doc.errors[0]!.message.split("\n")[0]);
  const root = doc.contents;
  if (isMap(root)) {
    const out: YamlMapping = new Map();
    for (const p of root.items) {
      const key = resolveNode(p.key, doc);
      out.set(key instanceof YamlTimestamp ? key.text : typeof key === "string" ? key : String(key), resolveNode(p.value, doc));
    }
    return out;
  }
  const value = resolveNode(root, doc);
  // `safe_load(...) or {}`: a falsy document counts as an empty mapping.
  const falsy = value === null || value === false || value === 0n || value === 0 || value === "" || (Array.isArray(value) && value.length === 0);
  return falsy ? new Map() : "not-a-mapping";
}
