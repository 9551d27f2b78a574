import { readFileSync } from "node:fs";
import { isMap, isSeq, LineCounter, parseDocument, type Node } from "yaml";
import type { z } from "zod";
import { InvalidInput, type Problem } from "./errors.ts";
import "./zod-messages.ts";

/**
 * The one way inputs cross the edge: parse with a zod schema, report every
 * problem at once with its place, return the inferred type.
 */
export function parseWith<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what: string,
  place: {
    file?: string;
    lineOf?: (path: PropertyKey[]) => number | undefined;
    /** How the user names the thing at a path, when not by its keys (a flag: `--image-size`). */
    nameOf?: (path: PropertyKey[]) => string | undefined;
  } = {},
): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems: Problem[] = result.error.issues.map((issue) => ({
    file: place.file,
    line: place.lineOf?.(issue.path),
    path: place.nameOf?.(issue.path) ?? (issue.path.length ? issue.path.map(String).join(".") : undefined),
    message: issue.message,
  }));
  throw new InvalidInput(what, problems);
}

/** Parse YAML text, keeping a way back from a document path to its line. */
export function parseYamlText(text: string, file: string) {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    throw new InvalidInput(
      `${file} is not valid YAML`,
      doc.errors.map((e) => ({ file, line: e.linePos?.[0]?.line ?? lineCounter.linePos(e.pos[0]).line, message: e.message.split("\n")[0]! })),
    );
  }
  const lineOf = (path: PropertyKey[]): number | undefined => {
    // Walk as deep as the path exists; a missing key reports its parent's line.
    let node: unknown = doc.contents;
    let offset = (node as Node | null)?.range?.[0];
    for (const key of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === key);
        if (!pair) break;
        offset = (pair.key as Node).range?.[0] ?? offset;
        node = pair.value;
      } else if (isSeq(node) && typeof key === "number") {
        node = node.items[key];
        offset = (node as Node | undefined)?.range?.[0] ?? offset;
      } else break;
    }
    return offset === undefined ? undefined : lineCounter.linePos(offset).line;
  };
  return { value: doc.toJS() as unknown, lineOf };
}

export function parseYamlFile<S extends z.ZodType>(schema: S, file: string, what: string): z.infer<S> {
  const { value, lineOf } = parseYamlText(readFileSync(file, "utf8"), file);
  return parseWith(schema, value, what, { file, lineOf });
}
