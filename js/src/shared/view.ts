// What every widget view shares: the model interface, trait access, change subscriptions that are
// undone on destroy, a coalesced redraw (one per animation frame), the theme and the PNG export.
import { composeView, downloadCanvas } from "./canvas";
import { el } from "./dom";
import { type Theme, applyTheme, watchTheme } from "./theme";
import type { BaseTraits, TraitKey } from "./traits";

export type Callback = (...args: unknown[]) => void;

/** The part of anywidget's model interface the views use (also what save_html's page provides). */
export interface Model {
  get(key: string): any; // eslint-disable-line @typescript-eslint/no-explicit-any
  set(key: string, value: unknown): void;
  save_changes(): void;
  on(event: string, cb: Callback): void;
  off(event?: string | null, cb?: Callback | null): void;
}

/** `addEventListener` that `destroy()` undoes (what `WidgetView.listen` is, for the parts a view delegates to). */
export type Listen = <K extends keyof HTMLElementEventMap>(target: HTMLElement, type: K, fn: (ev: HTMLElementEventMap[K]) => void) => void;

const nextFrame: (f: FrameRequestCallback) => number =
  typeof requestAnimationFrame === "function" ? (f) => requestAnimationFrame(f) : (f) => setTimeout(() => f(0), 16) as unknown as number;

/**
 * Base of a widget view. A subclass builds its DOM under `root`, then calls `requestRebuild()`;
 * `rebuild()` re-reads data and layout (data traits, theme, size changed), `draw()` only repaints
 * (selection traits changed). Several trait changes in one frame cost one repaint. `T` is the widget's
 * trait interface (`<widget>/traits.ts`): every key read, set or watched is checked against it.
 */
export abstract class WidgetView<T extends BaseTraits = BaseTraits> {
  protected readonly model: Model;
  protected readonly root: HTMLDivElement;
  protected readonly disposers: (() => void)[] = [];
  /** The standard parts every view places in its layout: title, toolbar, error line. */
  protected readonly titleEl = el("div", { cls: "pw-title pw-export-text" });
  protected readonly toolbar = el("div", { cls: "pw-toolbar" });
  protected readonly errorEl = el("pre", { cls: "pw-error" });
  protected theme!: Theme;
  private frame = 0;
  private rebuildPending = false;

  constructor(
    model: Model,
    host: HTMLElement,
    className: string,
    private readonly widgetName: string,
  ) {
    this.model = model;
    this.root = document.createElement("div");
    this.root.className = `pw-root ${className}`;
    keepKeysInside(this.root);
    host.appendChild(this.root);
    this.disposers.push(watchTheme(() => this.requestRebuild()));
  }

  protected abstract rebuild(): void;
  protected abstract draw(): void;
  /** Data traits changed: drop what was read or cached from them (the rebuild re-reads). */
  protected abstract dropData(): void;
  /** Bring the toolbar's controls in line with the traits (before a repaint). */
  protected abstract syncControls(): void;
  /** The file name `PNG` saves under. */
  protected abstract pngName(): string;

  /** A trait's value, typed by the widget's trait interface. */
  protected get<K extends TraitKey<T>>(key: K): T[K] {
    return this.model.get(key) as T[K];
  }

  /** Set traits from the view and send them to Python in one message. */
  protected setTraits(values: Partial<T>): void {
    for (const [k, v] of Object.entries(values)) this.model.set(k, v);
    this.model.save_changes();
  }

  /** Call `cb` when any of `keys` changes (from Python or from this view); undone by `destroy()`. */
  protected onChange(keys: readonly TraitKey<T>[], cb: Callback): void {
    // One subscription per key: only Backbone (Jupyter) reads "change:a change:b" as two events;
    // other AFM hosts (Panel's AnyWidgetComponent, marimo) take the string as one event name.
    for (const k of keys) {
      const event = `change:${k}`;
      this.model.on(event, cb);
      this.disposers.push(() => this.model.off(event, cb));
    }
  }

  /** Show an error in the view (as text) and in the console, instead of a blank widget. */
  protected showError(err: unknown): void {
    const msg = err instanceof Error ? err.message : String(err);
    this.errorEl.textContent = `${this.widgetName}: ${msg}`;
    console.error(err);
  }

  /** The usual wiring: `data` keys re-read everything, `look` keys re-lay out, `draw` keys repaint. */
  protected bindTraits(keys: { data: readonly TraitKey<T>[]; look: readonly TraitKey<T>[]; draw: readonly TraitKey<T>[] }): void {
    this.onChange(keys.data, () => {
      this.dropData();
      this.requestRebuild();
    });
    this.onChange(keys.look, () => this.requestRebuild());
    this.onChange(keys.draw, () => {
      this.syncControls();
      this.requestDraw();
    });
  }

  /** addEventListener, removed again by `destroy()`. */
  protected listen<K extends keyof HTMLElementEventMap>(
    target: HTMLElement,
    type: K,
    fn: (ev: HTMLElementEventMap[K]) => void,
  ): void {
    target.addEventListener(type, fn);
    this.disposers.push(() => target.removeEventListener(type, fn));
  }

  /** Read the theme trait (auto follows the host page) onto `root`; call at the start of `rebuild()`. */
  protected applyTheme(): Theme {
    this.theme = applyTheme(this.root, this.get("theme") ?? "auto");
    return this.theme;
  }

  protected requestRebuild(): void {
    this.rebuildPending = true;
    this.requestDraw();
  }

  protected requestDraw(): void {
    if (this.frame) return;
    this.frame = nextFrame(() => {
      this.frame = 0;
      if (this.rebuildPending) {
        this.rebuildPending = false;
        this.rebuild();
      } else this.draw();
    });
  }

  /** The caption a PNG export carries where the controls were (model, image, layer/head): say what the
   * figure shows, since the controls that said it are left out. Views override it. */
  protected exportCaption(): string {
    return this.get("model_name") ?? "";
  }

  /** The view as one canvas, as on screen, without controls, hints and status lines, and with the
   * caption in the toolbar's place (what `PNG` saves). */
  snapshot(): HTMLCanvasElement {
    const text = this.exportCaption();
    this.root.dataset.exportCaption = text; // what the last export said (tests read it)
    return composeView(this.root, this.theme.bg, this.theme.fg, { text, over: this.toolbar });
  }

  async exportPng(): Promise<void> {
    await downloadCanvas(this.snapshot(), this.pngName());
  }

  destroy(): void {
    for (const d of this.disposers.splice(0)) d();
    if (this.frame && typeof cancelAnimationFrame === "function") cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.root.remove();
  }
}

/** Keyboard events that start inside a widget stay there. A host's shortcuts (JupyterLab's "select the
 * next cell" on ArrowDown, Colab's, VS Code's) would otherwise take an arrow key pressed on a slider or a
 * canvas: the value would not change and the notebook would move. JupyterLab 4 and Notebook 7 handle
 * their key bindings in the bubbling phase (Lumino's `bubblingKeydown`), so stopping the event at the
 * widget's root keeps it; the widget's own handlers (on elements inside the root) have run by then.
 * Shift/Ctrl/Alt+Enter still reach the notebook: they run the cell, and no control here uses them. */
export function keepKeysInside(root: HTMLElement): void {
  const stop = (ev: Event) => {
    const k = ev as KeyboardEvent;
    if (k.key === "Enter" && (k.shiftKey || k.ctrlKey || k.altKey || k.metaKey)) return;
    ev.stopPropagation();
  };
  for (const type of ["keydown", "keyup", "keypress"]) root.addEventListener(type, stop);
}

/** anywidget's `render` for a view class: builds the view, returns its clean-up. */
export function renderWith(View: new (model: Model, host: HTMLElement) => { destroy(): void }) {
  return ({ model, el }: { model: Model; el: HTMLElement }): (() => void) => {
    const view = new View(model, el);
    return () => view.destroy();
  };
}
