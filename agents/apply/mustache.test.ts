import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseJson } from "../pyjson/parse.ts";
import { MustacheError, renderMustache } from "./mustache.ts";

// [what, template, metadata (JSON text), what pystache 0.6 + os-apply-config's JsonRenderer print]
// Expected values were printed by Debian's python3-os-apply-config (render_moustache).
const table: [string, string, string, string][] = [
    ["no HTML escaping", "{{x}}", "{\"x\": \"<a & 'b'>\"}", "<a & 'b'>"],
    ["triple and ampersand print the same", "{{{x}}}|{{&x}}", "{\"x\": \"<&>\"}", "<&>|<&>"],
    ["non-strings go through json.dumps, null and missing are empty", "{{n}} {{f}} {{big}} {{t}} {{nul}}|{{missing}}|", "{\"n\": 5, \"f\": 1.0, \"big\": 100000000000000000000000000000, \"t\": true, \"nul\": null}", "5 1.0 100000000000000000000000000000 true ||"],
    ["lists and dicts as Python JSON", "{{l}} {{d}}", "{\"l\": [1, \"a\", \"é\"], \"d\": {\"k\": \"v\", \"z\": [null]}}", "[1, \"a\", \"\\u00e9\"] {\"k\": \"v\", \"z\": [null]}"],
    ["dotted names only walk dict keys", "{{a.b.c}}|{{a.b}}|{{a.x}}|{{l.0}}|{{s.upper}}", "{\"a\": {\"b\": {\"c\": \"deep\"}}, \"l\": [1], \"s\": \"str\"}", "deep|{\"c\": \"deep\"}|||"],
    ["list items pushed, dot is JSON for non-strings", "{{#l}}[{{.}}]{{/l}}", "{\"l\": [\"a\", 1, 2.5, {\"k\": 1}, null, true]}", "[a][1][2.5][{\"k\": 1}][][true]"],
    ["list of maps falls back to outer names", "{{#l}}{{name}}={{value}};{{/l}}", "{\"l\": [{\"name\": \"a\", \"value\": 1}, {\"name\": \"b\"}], \"value\": \"outer\"}", "a=1;b=outer;"],
    ["dict, string, number and true render once", "{{#d}}{{k}}{{/d}}{{#s}}<{{.}}>{{/s}}{{#n}}<{{.}}>{{/n}}{{#t}}T{{/t}}", "{\"d\": {\"k\": \"v\"}, \"s\": \"str\", \"n\": 3, \"t\": true}", "v<str><3>T"],
    ["falsy sections skipped", "{{#f}}no{{/f}}{{#z}}no{{/z}}{{#zf}}no{{/zf}}{{#e}}no{{/e}}{{#el}}no{{/el}}{{#ed}}no{{/ed}}{{#nul}}no{{/nul}}{{#missing}}no{{/missing}}.", "{\"f\": false, \"z\": 0, \"zf\": 0.0, \"e\": \"\", \"el\": [], \"ed\": {}, \"nul\": null}", "."],
    ["inverted sections", "{{^f}}1{{/f}}{{^z}}2{{/z}}{{^e}}3{{/e}}{{^missing}}4{{/missing}}{{^t}}5{{/t}}{{^l}}6{{/l}}", "{\"f\": false, \"z\": 0, \"e\": \"\", \"t\": true, \"l\": [1]}", "1234"],
    ["trailing spaces keep a tag line", "a\n  {{#s}}  \nb\n{{/s}}\nc\n", "{\"s\": true}", "a\n    \nb\nc\n"],
    ["indented standalone tags vanish", "a\n  {{#s}}\nb\n  {{/s}}\nc\n", "{\"s\": true}", "a\nb\nc\n"],
    ["standalone comment", "a\n\t{{! comment }}\nb\n", "{}", "a\nb\n"],
    ["tags inside a line stay", "a {{#s}}\nb\n{{/s}} c\n", "{\"s\": true}", "a \nb\n c\n"],
    ["delimiter changes", "{{=<% %>=}}\n<% x %> {{x}}\n<%={{ }}=%>\n{{x}}\n", "{\"x\": \"X\"}", "X {{x}}\nX\n"],
    ["unclosed section drops the text before it", "pre {{#open}} rest {{x}}", "{\"x\": \"X\"}", " rest X"],
    ["whitespace inside tags", "{{ x }} {{# s }}in{{/ s }}", "{\"x\": \"X\", \"s\": 1}", "X in"],
    ["top-level dot is the whole metadata", "{{.}}", "{\"b\": 1, \"a\": [1.5, \"é\"]}", "{\"b\": 1, \"a\": [1.5, \"\\u00e9\"]}"],
    ["CR and astral characters pass through", "line1\r\nline2\rline3 {{x}}", "{\"x\": \"é😀\"}", "line1\r\nline2\rline3 é😀"],
    ["nested lists", "{{#l}}{{#.}}{{.}},{{/.}}{{/l}}", "{\"l\": [[1, 2], [3]]}", "1,2,3,"],
    ["context stack", "{{#outer}}{{#inner}}{{x}}{{/inner}}{{/outer}}", "{\"outer\": {\"x\": \"ox\"}, \"inner\": {\"y\": 1}, \"x\": \"top\"}", "ox"],
    ["dotted name inside its own section", "{{#a}}{{a.b}}{{/a}}", "{\"a\": {\"b\": \"ab\"}}", "ab"],
    ["tags may span lines", "{{x\n}} {{\nx}}", "{\"x\": \"X\"}", "X X"],
    ["missing partial is empty", "{{>nopartial}}|", "{}", "|"],
    ["list lines", "{{#list}}\n- {{.}}\n{{/list}}\n", "{\"list\": [\"a\", \"b\"]}", "- a\n- b\n"],
    ["inverted on an empty list", "{{^list}}\nnone\n{{/list}}\n", "{\"list\": []}", "none\n"],
    ["variables are never standalone", "  {{x}}  \n", "{\"x\": \"v\"}", "  v  \n"],
    ["spaces in triple and ampersand tags", "{{{ x }}} {{& x }}", "{\"x\": \"<\"}", "< <"],
    ["negative zero is falsy", "{{#k}}{{.}}{{/k}}", "{\"k\": -0.0}", ""],
    ["odd keys", "{{ }}|{{}}|", "{\" \": \"sp\"}", "|"],
    ["empty key parts", "{{a.}}{{.a}}", "{\"a\": {\"\": \"empty\"}, \"\": {\"a\": \"E\"}}", "emptyE"],
    ["standalone at end of text", "{{#x}}\n{{/x}}", "{\"x\": 1}", ""],
    ["multi-line comment", "{{!multi\nline}}x", "{}", "x"],
    ["unbalanced braces", "{{{x}}", "{\"x\": \"X\", \"{x\": \"brace\"}", "brace"],
];

describe("mustache like os-apply-config's pystache", () => {
  test.each(table)("%s", (_, template, metadata, expected) => {
    expect(renderMustache(template, parseJson(metadata))).toBe(expected);
  });

  test("a mismatched close tag is an error", () => {
    expect(() => renderMustache("{{#a}}{{/b}}", new Map())).toThrow(new MustacheError("Section end tag mismatch: b != a"));
    expect(() => renderMustache("{{/b}}", new Map())).toThrow(new MustacheError("Section end tag mismatch: b != None"));
  });

  test("partials come from NAME.mustache in the partials folder, indented", () => {
    const dir = mkdtempSync(join(tmpdir(), "partials-"));
    writeFileSync(join(dir, "item.mustache"), "name: {{name}}\n\nend\n");
    try {
      expect(renderMustache("list:\n  {{>item}}\nafter\n", parseJson('{"name": "n"}'), { partialsDir: dir })).toBe(
        "list:\n  name: n\n\n  end\nafter\n",
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
