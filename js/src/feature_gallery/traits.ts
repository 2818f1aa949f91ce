// FeatureGallery's synced traits (prisma_widgets/widgets/feature_gallery.py), keys and types.
import { type ArrayTrait, type AssertTrue, BASE_TRAIT_KEYS, type BaseTraits, type SameKeys } from "../shared/traits";

export type SortBy = "push" | "frequency" | "mean" | "max" | "index";
export type Normalization = "feature" | "image";

/** The kernel's answer to `patch_query`: the features active at a token of an image. */
export interface PatchResult {
  image?: number;
  token?: number;
  features?: number[];
  values?: number[];
}

/** A steering request from the view (`n` makes a repeated request a new value). */
export interface SteerRequest {
  feature?: number;
  op?: "zero" | "scale" | "clamp";
  value?: number;
  n?: number;
}

/** The kernel's answer: mean class (prompt) probabilities over the feature's top images, before and after. */
export interface SteerResult {
  feature?: number;
  op?: string;
  value?: number;
  images?: number;
  classes?: number[];
  names?: string[];
  before?: number[];
  after?: number[];
  note?: string;
  error?: string;
}

export interface FeatureGalleryTraits extends BaseTraits {
  // the index: one entry per listed feature
  feature_ids: ArrayTrait;
  frequency: ArrayTrait;
  mean_activation: ArrayTrait;
  max_activation: ArrayTrait;
  effect_strength: ArrayTrait;
  top_class: ArrayTrait;
  class_names: string[];
  density_counts: number[];
  density_edges: number[];
  d_sae: number;
  n_images: number;
  hook: string;
  readout_note: string;
  grid: number[];
  n_prefix_tokens: number;
  // the cards on screen
  card_features: number[];
  card_images: ArrayTrait;
  card_values: ArrayTrait;
  card_maps: ArrayTrait;
  card_map_scale: ArrayTrait;
  // the detail of `feature`
  detail_features: number[];
  detail_images: ArrayTrait;
  detail_values: ArrayTrait;
  detail_maps: ArrayTrait;
  detail_map_scale: ArrayTrait;
  quantile_images: ArrayTrait;
  quantile_values: ArrayTrait;
  quantile_maps: ArrayTrait;
  quantile_map_scale: ArrayTrait;
  effect_classes: ArrayTrait;
  effect_values: ArrayTrait;
  act_hist_counts: ArrayTrait;
  act_hist_edges: ArrayTrait;
  effect_hist_counts: ArrayTrait;
  effect_hist_edges: ArrayTrait;
  // the images those refer to
  images: ArrayTrait;
  image_ids: number[];
  image_labels: string[];
  // clips (a video model): the frame each image shows, and each top clip's frames (gallery_frames.py)
  frames: number;
  card_frames: ArrayTrait;
  detail_frames: ArrayTrait;
  detail_frame_values: ArrayTrait;
  detail_frame_images: ArrayTrait;
  quantile_frames: ArrayTrait;
  image_frames: number[];
  // patch look-up
  live: boolean;
  patch_query: number[];
  patch_result: PatchResult;
  patch_table_images: number[];
  patch_table_features: ArrayTrait;
  patch_table_values: ArrayTrait;
  // steering (needs the kernel)
  can_steer: boolean;
  steer_request: SteerRequest;
  steer_result: SteerResult;
  // selection and list state, both ways
  feature: number;
  visible: number[];
  sort_by: SortBy;
  descending: boolean;
  query: string;
  hide_dead: boolean;
  page: number;
  page_size: number;
  normalization: Normalization;
  status: string;
  // look
  thumb_size: number;
  opacity: number;
}

export const TRAIT_KEYS = [
  ...BASE_TRAIT_KEYS,
  "feature_ids",
  "frequency",
  "mean_activation",
  "max_activation",
  "effect_strength",
  "top_class",
  "class_names",
  "density_counts",
  "density_edges",
  "d_sae",
  "n_images",
  "hook",
  "readout_note",
  "grid",
  "n_prefix_tokens",
  "card_features",
  "card_images",
  "card_values",
  "card_maps",
  "card_map_scale",
  "detail_features",
  "detail_images",
  "detail_values",
  "detail_maps",
  "detail_map_scale",
  "quantile_images",
  "quantile_values",
  "quantile_maps",
  "quantile_map_scale",
  "effect_classes",
  "effect_values",
  "act_hist_counts",
  "act_hist_edges",
  "effect_hist_counts",
  "effect_hist_edges",
  "images",
  "image_ids",
  "image_labels",
  "live",
  "patch_query",
  "patch_result",
  "patch_table_images",
  "patch_table_features",
  "patch_table_values",
  "can_steer",
  "steer_request",
  "steer_result",
  "feature",
  "visible",
  "sort_by",
  "descending",
  "query",
  "hide_dead",
  "page",
  "page_size",
  "normalization",
  "status",
  "thumb_size",
  "opacity",
  "frames",
  "card_frames",
  "detail_frames",
  "detail_frame_values",
  "detail_frame_images",
  "quantile_frames",
  "image_frames",
] as const;

export type KeysMatch = AssertTrue<SameKeys<FeatureGalleryTraits, typeof TRAIT_KEYS>>;
