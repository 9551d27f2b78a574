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
  produce(work: OutputWork): Promise<void>;
}

export type { BuildOptions };
