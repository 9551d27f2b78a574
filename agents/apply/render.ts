import { accessSync, constants, readFileSync, statSync } from "node:fs";
import { TemplateError } from "../errors.ts";
import { pyDumps } from "../pyjson/dumps.ts";
import type { PyDict } from "../pyjson/value.ts";
import { ControlError, readControl, type Control } from "./control.ts";
import { renderMustache } from "./mustache.ts";
import type { TemplateFile } from "./templates.ts";

export interface RenderedFile extends TemplateFile {
  body: Uint8Array;
  control: Control;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function isExecutable(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * An executable template runs with no arguments, the metadata as JSON on
 * stdin (Python's json.dumps), and its stdout becomes the file.
 */
async function runExecutable(path: string, metadata: PyDict): Promise<Uint8Array> {
  // Bun feeds a buffer stdin itself and, like Python's communicate(), does not
  // fail when a script exits without reading it.
  const child = Bun.spawn([path], { stdin: Buffer.from(pyDumps(metadata)), stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, status] = await Promise.all([
    new Response(child.stdout).bytes(),
    new Response(child.stderr).bytes(),
    child.exited,
  ]);
  if (status !== 0) {
    const output = Buffer.concat([stdout, stderr]).toString("utf8");
    throw new TemplateError(path, `config script failed (exit ${status}) with output:\n\n${output}`);
  }
  try {
    utf8.decode(stdout);
  } catch {
    throw new TemplateError(path, "config script printed output that is not UTF-8");
  }
  return stdout;
}

/** Templates are read as text: CRLF and lone CR become LF, as Python's text mode does. */
function readTemplateText(path: string): string {
  return utf8.decode(readFileSync(path)).replace(/\r\n?/g, "\n");
}

export async function renderOne(t: TemplateFile, metadata: PyDict): Promise<RenderedFile> {
  let body: Uint8Array;
  if (isExecutable(t.source)) body = await runExecutable(t.source, metadata);
  else {
    try {
      body = Buffer.from(renderMustache(readTemplateText(t.source), metadata), "utf8");
    } catch (e) {
      throw new TemplateError(t.source, `could not render moustache template: ${(e as Error).message}`);
    }
  }
  let control: Control;
  try {
    control = readControl(t.source);
  } catch (e) {
    if (e instanceof ControlError) throw new TemplateError(`${t.source}.oac`, e.message);
    throw e;
  }
  return { ...t, body, control };
}

/** Render every template before anything is written: one error and nothing changes. */
export async function renderTree(templates: TemplateFile[], metadata: PyDict): Promise<RenderedFile[]> {
  const out: RenderedFile[] = [];
  for (const t of templates) out.push(await renderOne(t, metadata));
  return out;
}
