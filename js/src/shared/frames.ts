// The time axis of a video transformer's tokens, shared by the widgets (prisma_widgets/widgets/frames.py).
//
// Tokens are `nPrefix` prefix tokens, then `frames` token frames of rows x cols patches, frame-major. A view
// shows one frame at a time: it maps its per-frame positions (prefix tokens, then the frame's patches: the
// layout an image has) to the clip's tokens and back, and draws the frame's own image from `frame_pixels`
// (uint8 [frames, H, W, 3], sent once). `FrameStrip` is the control: a play button, a slider and a label,
// synced both ways with the `frame` trait. Pure helpers first (vitest covers them), then the DOM control.
import "./frames.css";

import { type EncodedArray, decode } from "./codec";
import { button, el, setText } from "./dom";

export interface FramePixels {
  data: Uint8Array;
  H: number;
  W: number;
  C: number;
}

/** The clip tokens shown in one frame: the prefix tokens, then that frame's rows x cols patches. */
export function frameTokens(nPrefix: number, rows: number, cols: number, frame: number): Int32Array {
  const out = new Int32Array(nPrefix + rows * cols);
  for (let i = 0; i < nPrefix; i++) out[i] = i;
  const base = nPrefix + frame * rows * cols;
  for (let i = 0; i < rows * cols; i++) out[nPrefix + i] = base + i;
  return out;
}

/** A clip token as a position within its frame (prefix tokens stay; a patch keeps its row and column). */
export function localToken(token: number, nPrefix: number, rows: number, cols: number): number {
  if (token < nPrefix) return token;
  return nPrefix + ((token - nPrefix) % (rows * cols));
}

/** The token frame of a clip token (prefix tokens: -1). */
export function tokenFrame(token: number, nPrefix: number, rows: number, cols: number): number {
  return token < nPrefix ? -1 : Math.floor((token - nPrefix) / (rows * cols));
}

/** The clip token of a position within frame `frame`. */
export function clipToken(local: number, nPrefix: number, rows: number, cols: number, frame: number): number {
  return local < nPrefix ? local : nPrefix + frame * rows * cols + (local - nPrefix);
}

/**
 * Gather the tokens `idx` out of an array laid out [outer, T, inner] (C order): [outer, idx.length, inner].
 * What a per-frame view of per-token data is.
 */
export function gatherTokens<A extends ArrayLike<number>>(arr: A, outer: number, T: number, inner: number, idx: Int32Array): A {
  const ctor = (arr as unknown as { constructor: new (n: number) => A }).constructor;
  const n = idx.length;
  const out = new ctor(outer * n * inner) as unknown as { [i: number]: number };
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < n; j++) {
      const src = (o * T + idx[j]) * inner;
      const dst = (o * n + j) * inner;
      for (let k = 0; k < inner; k++) out[dst + k] = arr[src + k];
    }
  }
  return out as unknown as A;
}

/** Frame `f` of `frame_pixels` [F, H, W, C] (null when there are none). */
export function framePixels(encoded: unknown, f: number): FramePixels | null {
  const arr = decode(encoded as EncodedArray);
  if (!arr || arr.shape.length !== 4) return null;
  const [F, H, W, C] = arr.shape;
  const k = Math.max(0, Math.min(F - 1, f));
  const size = H * W * C;
  return { data: (arr.data as Uint8Array).subarray(k * size, (k + 1) * size), H, W, C };
}

/** The next frame when playing (wraps around). */
export function nextFrame(frame: number, frames: number): number {
  return frames > 0 ? (frame + 1) % frames : 0;
}

/** The frame control: ▶ play, a slider over the token frames, and "frame t / F". Hidden for one frame. */
export class FrameStrip {
  readonly root: HTMLDivElement;
  private readonly slider: HTMLInputElement;
  private readonly label: HTMLSpanElement;
  private readonly play: HTMLButtonElement;
  private timer: ReturnType<typeof setInterval> | null = null;
  private frames = 1;
  private frame = 0;

  constructor(
    private readonly setFrame: (frame: number) => void,
    private readonly intervalMs: () => number,
  ) {
    this.play = button("▶ play frames", "play the clip: step through the token frames", () => this.toggle(), "pw-frame-play");
    this.play.setAttribute("aria-pressed", "false");
    this.slider = el("input", { cls: "pw-frame-slider", attrs: { type: "range", min: "0", max: "0", step: "1", "aria-label": "frame" } });
    this.label = el("span", { cls: "pw-frame-label pw-export-text" });
    this.root = el("div", { cls: "pw-frame-row" }, [this.play, this.slider, this.label]);
    this.slider.addEventListener("input", () => {
      const f = Math.max(0, Math.min(this.frames - 1, Math.round(Number(this.slider.value))));
      if (f !== this.frame) this.setFrame(f);
    });
  }

  /** Show `frame` of `frames` (from the trait); `what` names the frame, e.g. "t2". */
  sync(frame: number, frames: number, what = ""): void {
    this.frames = Math.max(1, frames);
    this.frame = Math.max(0, Math.min(this.frames - 1, frame));
    this.root.style.display = this.frames > 1 ? "" : "none";
    this.slider.max = String(this.frames - 1);
    if (this.slider.value !== String(this.frame)) this.slider.value = String(this.frame);
    setText(this.label, `frame ${this.frame + 1}/${this.frames}${what ? ` (${what})` : ""}`);
    if (this.frames <= 1) this.stop();
  }

  private toggle(): void {
    if (this.timer) this.stop();
    else {
      const ms = Math.max(50, this.intervalMs());
      this.timer = setInterval(() => this.setFrame(nextFrame(this.frame, this.frames)), ms);
    }
    const playing = this.timer !== null;
    this.play.textContent = playing ? "❚❚ pause" : "▶ play frames";
    this.play.setAttribute("aria-pressed", String(playing));
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.play.textContent = "▶ play frames";
    this.play.setAttribute("aria-pressed", "false");
  }
}
