import type { BuildOptions } from "../options.ts";
import type { OutputWork } from "./work.ts";

/** One file a build produced, as the manifest lists it. */
export interface Artifact {
  type: string;
  path: string;
  sha256: string;
  size: number;
}

/** An output type (-t), one module each, registered in outputs/index.ts. */
export interface OutputType {
  name: string;
  description: string;
  /** The extensions of the files it writes beside -o (default: its name), checked before the build for what exists. */
  files?: string[];
  produce(work: OutputWork): Promise<void>;
}

export type { BuildOptions };
