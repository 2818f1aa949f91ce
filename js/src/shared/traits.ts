// The synced traits as TypeScript sees them. Every widget's `<widget>/traits.ts` lists its keys
// (`TRAIT_KEYS`, which tests/test_trait_contract.py compares with the Python traits tagged `sync=True`)
// and types them (an interface the view's `get` / `setTraits` / `onChange` are checked against, so a
// misspelt key fails `tsc`).
import type { EncodedArray } from "./codec";
import type { ThemeSetting } from "./theme";

/** An array trait (Python's `ArrayTrait`): `{view, dtype, shape}`, or `{}` for none. */
export type ArrayTrait = Partial<EncodedArray>;

/** The traits of every widget (Python's `PrismaWidget`). */
export interface BaseTraits {
  theme: ThemeSetting;
  colormap: string;
  title: string;
  /** the model the view shows (a PNG export's caption names it) */
  model_name: string;
}

export const BASE_TRAIT_KEYS = ["theme", "colormap", "title", "model_name"] as const;

export type TraitKey<T> = keyof T & string;

/** Read access by a checked key: the anywidget model, or a plain `{ get }` object in tests. */
export interface TraitSource<T> {
  get(key: TraitKey<T>): unknown;
}

/** Typed read access: the model seen through a widget's trait interface (what toolbars and panels read). */
export interface Traits<T> {
  get<K extends TraitKey<T>>(key: K): T[K];
}

/** `true` when the list `K` names exactly the keys of `T`; otherwise a type naming what is missing or extra. */
export type SameKeys<T, K extends readonly string[]> = [Exclude<TraitKey<T>, K[number]>] extends [never]
  ? [Exclude<K[number], TraitKey<T>>] extends [never]
    ? true
    : { extraKeys: Exclude<K[number], TraitKey<T>> }
  : { missingKeys: Exclude<TraitKey<T>, K[number]> };

/** Compiles only when its argument is `true` (use: `type Check = AssertTrue<SameKeys<Traits, typeof TRAIT_KEYS>>`). */
export type AssertTrue<X extends true> = X;

export type BaseKeysMatch = AssertTrue<SameKeys<BaseTraits, typeof BASE_TRAIT_KEYS>>;
