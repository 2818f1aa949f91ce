// Colour maps as 256-entry RGBA lookup tables built from published control points, interpolated in
// sRGB. Sequential: viridis, magma, cividis (perceptually uniform, colour-blind safe), greys.
// Diverging (centre = 0.5): puor (ColorBrewer PuOr, colour-blind safe) and rdbu (ColorBrewer RdBu).

export type ColormapName = "viridis" | "magma" | "cividis" | "greys" | "puor" | "rdbu";

export interface ColormapInfo {
  name: ColormapName;
  label: string;
  kind: "sequential" | "diverging";
  colorblindSafe: boolean;
  stops: string[];
}

export const COLORMAPS: Record<ColormapName, ColormapInfo> = {
  viridis: {
    name: "viridis",
    label: "viridis",
    kind: "sequential",
    colorblindSafe: true,
    stops: ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"],
  },
  magma: {
    name: "magma",
    label: "magma",
    kind: "sequential",
    colorblindSafe: true,
    stops: ["#000004", "#180f3d", "#440f76", "#721f81", "#9e2f7f", "#cd4071", "#f1605d", "#fd9668", "#feca8d", "#fcfdbf"],
  },
  cividis: {
    name: "cividis",
    label: "cividis",
    kind: "sequential",
    colorblindSafe: true,
    stops: ["#00224e", "#123570", "#3b496c", "#575d6d", "#707173", "#8a8678", "#a59c74", "#c3b369", "#e1cc55", "#fee838"],
  },
  greys: {
    name: "greys",
    label: "greys",
    kind: "sequential",
    colorblindSafe: true,
    stops: ["#ffffff", "#000000"],
  },
  puor: {
    name: "puor",
    label: "PuOr (diverging)",
    kind: "diverging",
    colorblindSafe: true,
    stops: ["#2d004b", "#542788", "#8073ac", "#b2abd2", "#d8daeb", "#f7f7f7", "#fee0b6", "#fdb863", "#e08214", "#b35806", "#7f3b08"],
  },
  rdbu: {
    name: "rdbu",
    label: "RdBu (diverging)",
    kind: "diverging",
    colorblindSafe: true,
    stops: ["#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f"],
  },
};

export const COLORMAP_NAMES = Object.keys(COLORMAPS) as ColormapName[];

export function parseHex(hex: string): [number, number, number] {
  const h = hex.replace("#", "");
  const full = h.length === 3 ? h.split("").map((c) => c + c).join("") : h;
  const v = parseInt(full, 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

/** Diverging maps for a dark page: the same hues, but the centre (0) is a dark grey and the ends are the
 * brightest, so a value near 0 does not glow as a white box on a dark background while |value| still reads
 * as contrast with the page. Colour-blind safety is kept (the same blue/red and purple/orange axes). */
export const DARK_DIVERGING: Partial<Record<ColormapName, string[]>> = {
  rdbu: ["#b3d7f0", "#6aaed6", "#3a84bf", "#24588f", "#1c3553", "#262626", "#5a2222", "#98262b", "#cf4d43", "#ee8a70", "#f9c3aa"],
  puor: ["#d7c9f0", "#a796d4", "#7a62b0", "#53357f", "#32244b", "#262626", "#4a2f12", "#8a4a0b", "#c46d12", "#eca14a", "#fdd49a"],
};

const cache = new Map<string, Uint8ClampedArray>();

/** RGBA lookup table: entry i (0..255) is the colour of t = i / 255. `dark`: a diverging map's dark-theme
 * variant (`DARK_DIVERGING`); sequential maps are the same in both themes. */
export function lut(name: string, dark = false): Uint8ClampedArray {
  const key = (name in COLORMAPS ? name : "viridis") as ColormapName;
  const darkStops = dark ? DARK_DIVERGING[key] : undefined;
  const cacheKey = darkStops ? `${key}|dark` : key;
  const hit = cache.get(cacheKey);
  if (hit) return hit;
  const stops = (darkStops ?? COLORMAPS[key].stops).map(parseHex);
  const out = new Uint8ClampedArray(256 * 4);
  const segs = stops.length - 1;
  for (let i = 0; i < 256; i++) {
    const x = (i / 255) * segs;
    const j = Math.min(Math.floor(x), segs - 1);
    const f = x - j;
    const a = stops[j];
    const b = stops[j + 1];
    out[i * 4] = Math.round(a[0] + (b[0] - a[0]) * f);
    out[i * 4 + 1] = Math.round(a[1] + (b[1] - a[1]) * f);
    out[i * 4 + 2] = Math.round(a[2] + (b[2] - a[2]) * f);
    out[i * 4 + 3] = 255;
  }
  cache.set(cacheKey, out);
  return out;
}

/** Index into a LUT for t in [0, 1] (clamped; NaN -> 0). */
export function lutIndex(t: number): number {
  if (!(t > 0)) return 0;
  if (t >= 1) return 255;
  return Math.round(t * 255);
}

export function colorAt(name: string, t: number): [number, number, number] {
  const table = lut(name);
  const i = lutIndex(t) * 4;
  return [table[i], table[i + 1], table[i + 2]];
}

/** Relative luminance (WCAG) of an sRGB colour, 0..1. */
export function luminance([r, g, b]: [number, number, number]): number {
  const lin = (c: number) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

/** The colour maps as options of a `select` control. */
export const COLORMAP_OPTIONS: { value: string; label: string }[] = COLORMAP_NAMES.map((n) => ({ value: n, label: COLORMAPS[n].label }));
