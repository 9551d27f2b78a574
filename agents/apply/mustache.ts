import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pyDumps } from "../pyjson/dumps.ts";
import { isDict, isList, truthy, type PyValue } from "../pyjson/value.ts";

/**
 * Mustache as os-apply-config renders it: pystache 0.6's parser and
 * resolution with os-apply-config's JsonRenderer (no HTML escaping,
 * non-strings through Python's json.dumps, null as empty, missing tags
 * empty). Our own renderer because mustache.js differs where rendered
 * configuration files show it: it HTML-escapes `{{x}}`, prints numbers and
 * objects the JavaScript way, follows the spec's standalone-line rule (pystache
 * keeps a line whose tag is followed by spaces), resolves dotted names with
 * fallback, and rejects unclosed sections that pystache renders silently.
 *
 * Behaviour kept on purpose (all observed with Debian's python3-pystache):
 *  - `{{x}}`, `{{{x}}}` and `{{&x}}` print the same.
 *  - `{{a.b}}`: `a` is looked up through the context stack, `b` only as a key
 *    of that value; `{{list.0}}` is empty.
 *  - A standalone section/comment/partial/delimiter tag consumes its line only
 *    when only spaces or tabs precede it and a newline or the end follows at once.
 *  - An unclosed `{{#x}}` drops the text before it and renders the rest.
 *  - A partial `{{>name}}` reads `./name.mustache` from the working directory.
 */

/** A template error: what pystache raised (its message), for the caller to report. */
export class MustacheError extends Error {}

type Node =
  | string
  | { kind: "var"; key: string }
  | { kind: "partial"; key: string; indent: string }
  | { kind: "section"; key: string; body: Node[] }
  | { kind: "inverted"; key: string; body: Node[] };

/** Python's `\s` for str patterns (str.isspace), which JavaScript's `\s` does not quite match. */
const WS = "[\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const WS_RUN = new RegExp(`${WS}+`, "u");

const escapeRegex = (s: string) => s.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&");

/** pystache's tag pattern, with `.` as `[^\n]` and `\s` as Python's whitespace. */
function tagPattern(open: string, close: string): RegExp {
  const o = escapeRegex(open);
  const c = escapeRegex(close);
  return new RegExp(
    `([ \\t]*)${o}${WS}*(?:(=)${WS}*([^\\n]+?)${WS}*=|(\\{)${WS}*([^\\n]+?)${WS}*\\}|([!>&/#^]?)${WS}*([\\s\\S]+?))${WS}*${c}`,
    "gu",
  );
}

export function parseTemplate(template: string, delimiters: [string, string] = ["{{", "}}"]): Node[] {
  let pattern = tagPattern(...delimiters);
  let start = 0;
  let current: Node[] = [];
  let sectionKey: string | undefined;
  const stack: { type: "#" | "^"; key: string | undefined; nodes: Node[] }[] = [];
  const isEol = (c: string | undefined) => c === "\n" || c === "\r";

  for (;;) {
    pattern.lastIndex = start;
    const m = pattern.exec(template);
    if (!m) break;
    let matchStart = m.index;
    let end = m.index + m[0].length;
    let type: string;
    let key: string;
    if (m[2] !== undefined) [type, key] = ["=", m[3]!];
    else if (m[4] !== undefined) [type, key] = ["&", m[5]!];
    else [type, key] = [m[6]!, m[7]!];
    let leading = m[1]!;

    const beginsLine = matchStart === 0 || isEol(template[matchStart - 1]);
    const endsLine = end === template.length || isEol(template[end]);
    if (beginsLine && endsLine && type !== "" && type !== "&") {
      if (template[end] === "\r") end++;
      if (template[end] === "\n") end++;
    } else if (leading) {
      matchStart += leading.length;
      leading = "";
    }
    if (start !== matchStart) current.push(template.slice(start, matchStart));
    start = end;

    if (type === "#" || type === "^") {
      stack.push({ type, key: sectionKey, nodes: current });
      sectionKey = key;
      current = [];
      continue;
    }
    if (type === "/") {
      if (key !== sectionKey) throw new MustacheError(`Section end tag mismatch: ${key} != ${sectionKey ?? "None"}`);
      const body = current;
      const outer = stack.pop()!;
      sectionKey = outer.key;
      current = outer.nodes;
      current.push({ kind: outer.type === "#" ? "section" : "inverted", key, body });
      continue;
    }
    if (type === "!") continue;
    if (type === "=") {
      const parts = key.split(WS_RUN).filter(Boolean);
      if (parts.length < 2) throw new MustacheError(`list index out of range (delimiters ${key})`);
      delimiters = [parts[0]!, parts[1]!];
      pattern = tagPattern(...delimiters);
      continue;
    }
    if (type === ">") current.push({ kind: "partial", key, indent: leading });
    else current.push({ kind: "var", key });
  }
  if (start !== template.length) current.push(template.slice(start));
  // An unclosed section leaves pystache holding only that section's nodes.
  return current;
}

const NOT_FOUND = Symbol("not found");

class Context {
  constructor(private readonly stack: PyValue[]) {}

  push(v: PyValue) {
    this.stack.push(v);
  }
  pop() {
    this.stack.pop();
  }

  /** A missing name resolves to "" (pystache's missing_tags='ignore'). */
  get(name: string): PyValue {
    if (name === ".") return this.stack[this.stack.length - 1] ?? "";
    const [first, ...rest] = name.split(".");
    let value: PyValue | typeof NOT_FOUND = NOT_FOUND;
    for (let i = this.stack.length - 1; i >= 0; i--) {
      const item = this.stack[i]!;
      if (isDict(item) && item.has(first!)) {
        value = item.get(first!)!;
        break;
      }
    }
    if (value === NOT_FOUND) return "";
    for (const part of rest) {
      if (!isDict(value) || !value.has(part)) return "";
      value = value.get(part)!;
    }
    return value;
  }
}

/** JsonRenderer.str_coerce: strings verbatim, null empty, the rest as Python's json.dumps. */
function toText(v: PyValue): string {
  if (typeof v === "string") return v;
  if (v === null) return "";
  return pyDumps(v);
}

export interface RenderOptions {
  /** Where `{{>name}}` looks for `name.mustache` (pystache: the current directory). */
  partialsDir?: string;
}

function renderNodes(nodes: Node[], ctx: Context, options: RenderOptions): string {
  let out = "";
  for (const node of nodes) {
    if (typeof node === "string") {
      out += node;
      continue;
    }
    switch (node.kind) {
      case "var":
        out += toText(ctx.get(node.key));
        break;
      case "partial":
        out += renderPartial(node.key, node.indent, ctx, options);
        break;
      case "inverted":
        if (!truthy(ctx.get(node.key))) out += renderNodes(node.body, ctx, options);
        break;
      case "section": {
        const data = ctx.get(node.key);
        if (!truthy(data)) break;
        for (const item of isList(data) ? data : [data]) {
          ctx.push(item);
          out += renderNodes(node.body, ctx, options);
          ctx.pop();
        }
        break;
      }
    }
  }
  return out;
}

function renderPartial(name: string, indent: string, ctx: Context, options: RenderOptions): string {
  const path = join(options.partialsDir ?? process.cwd(), `${name}.mustache`);
  if (!existsSync(path)) return "";
  // pystache reads partials as bytes (no newline translation) and indents every non-empty line.
  const text = new TextDecoder("utf-8", { fatal: true }).decode(readFileSync(path));
  const indented = text
    .split("\n")
    .map((line) => (line ? indent + line : line))
    .join("\n");
  return renderNodes(parseTemplate(indented), ctx, options);
}

/** Render a template against metadata (the root context), as os-apply-config does. */
export function renderMustache(template: string, metadata: PyValue, options: RenderOptions = {}): string {
  return renderNodes(parseTemplate(template), new Context([metadata]), options);
}
