// PatchingHeatmap's synced traits (prisma_widgets/widgets/patching_heatmap.py), keys and types.
import { type ArrayTrait, type AssertTrue, BASE_TRAIT_KEYS, type BaseTraits, type SameKeys } from "../shared/traits";

export type Site = "resid_pre" | "resid_mid" | "attn_out" | "mlp_out" | "z" | "pattern";
export type By = "position" | "head" | "head_position" | "layer" | "frame" | "tube";
export type Method = "exact" | "attribution";
export type Direction = "denoise" | "noise";
export type Normalization = "global" | "unit";
export type CorruptionMode = "mask" | "blur" | "noise" | "swap";

/** A cell of the result: its layer (model index) and, as `by` has them, its position and head. */
export interface Selection {
  layer: number;
  position?: number;
  head?: number;
  /** by="frame": the token frame patched whole */
  frame?: number;
  /** by="tube": the patch (row-major) patched through every frame */
  tube?: number;
}

/** Top-k predictions as Python sends them (`selected_top` also names its layer position and cell). */
export interface TopJson {
  indices?: number[];
  probs?: number[];
  layer?: number;
  cell?: number;
}

export interface PatchingHeatmapTraits extends BaseTraits {
  // the result (binary)
  values: ArrayTrait;
  cell_top_indices: ArrayTrait;
  cell_top_probs: ArrayTrait;
  image_pixels: ArrayTrait;
  corrupted_pixels: ArrayTrait;
  // layout and names
  axes: string[];
  layer_indices: number[];
  token_labels: string[];
  head_labels: string[];
  grid: number[];
  n_prefix_tokens: number;
  class_names: string[];
  clean_metric: number;
  corrupted_metric: number;
  clean_top: TopJson;
  corrupted_top: TopJson;
  selected_top: TopJson;
  predictions_note: string;
  // what was computed, both ways
  site: Site;
  by: By;
  method: Method;
  direction: Direction;
  /** `{}` before anything is selected */
  selected: Selection | Record<string, never>;
  normalization: Normalization;
  // the patch editor and the kernel round trip
  corruption_patches: number[];
  corruption_mode: CorruptionMode;
  run_count: number;
  interactive: boolean;
  note: string;
  status: string;
  /** why the last Run or recompute did not run ("" after one runs) */
  error: string;
  progress: number;
  // the time axis of a clip (1, 0 and {} for an image)
  frames: number;
  frame: number;
  frame_pixels: ArrayTrait;
  // look
  size: number;
  map_size: number;
}

export const TRAIT_KEYS = [
  ...BASE_TRAIT_KEYS,
  "values",
  "cell_top_indices",
  "cell_top_probs",
  "image_pixels",
  "corrupted_pixels",
  "axes",
  "layer_indices",
  "token_labels",
  "head_labels",
  "grid",
  "n_prefix_tokens",
  "class_names",
  "clean_metric",
  "corrupted_metric",
  "clean_top",
  "corrupted_top",
  "selected_top",
  "predictions_note",
  "site",
  "by",
  "method",
  "direction",
  "selected",
  "normalization",
  "corruption_patches",
  "corruption_mode",
  "run_count",
  "interactive",
  "note",
  "status",
  "error",
  "progress",
  "frames",
  "frame",
  "frame_pixels",
  "size",
  "map_size",
] as const;

export type KeysMatch = AssertTrue<SameKeys<PatchingHeatmapTraits, typeof TRAIT_KEYS>>;
