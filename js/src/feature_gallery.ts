// FeatureGallery: an SAE's features over a set of images, as cards and a detail view.
//
// Python computes every statistic; this file sorts and filters the feature index, reports the page on
// screen (`visible`) so Python sends those cards, reports clicks through `feature` and `patch_query`,
// and wires the DOM (data in feature_gallery/data.ts, geometry in layout.ts, painting in draw.ts). User
// text (class names, prompts, image labels, the title) goes in via textContent or as canvas text.
import "./shared/theme.css";
import "./feature_gallery/style.css";

import { decode, type EncodedArray } from "./shared/codec";
import { COLORMAP_OPTIONS } from "./shared/colormap";
import { button, el, select, setText } from "./shared/dom";
import { patchTokenAt } from "./shared/patches";
import { localPoint } from "./shared/pointer";
import { formatValue } from "./shared/scale";
import type { TraitKey } from "./shared/traits";
import { type Model, WidgetView, renderWith } from "./shared/view";
import {
  type GalleryIndex,
  type Grid,
  type Shot,
  SORTS,
  cardShots,
  className,
  densityBin,
  formatFrequency,
  listOrder,
  pageCount,
  pageOf,
  patchFeatures,
  readDetail,
  readGrid,
  readIndex,
  topClasses,
} from "./feature_gallery/data";
import { ImagePool, type ShotStyle, drawHistogram, drawMapColorbar, drawShots } from "./feature_gallery/draw";
import { drawBars, readHistogram } from "./feature_gallery/histograms";
import { clipTokenOf, drawFrameStrips, readFrameStrips } from "./feature_gallery/frames";
import type { Placed } from "./feature_gallery/layout";
import { SteerPanel } from "./feature_gallery/steer";
import type { FeatureGalleryTraits } from "./feature_gallery/traits";

export type { Model };

type Key = TraitKey<FeatureGalleryTraits>;
const INDEX_KEYS: Key[] = ["feature_ids", "frequency", "mean_activation", "max_activation", "effect_strength", "top_class", "class_names", "d_sae", "grid", "n_prefix_tokens", "density_counts", "density_edges"];
const CONTENT_KEYS: Key[] = ["card_features", "card_images", "card_maps", "detail_features", "detail_images", "quantile_images", "effect_classes", "images", "image_ids", "image_labels", "frames", "detail_frame_values", "detail_frame_images"];
const LIST_KEYS: Key[] = ["sort_by", "descending", "query", "hide_dead", "page", "page_size"];
const DRAW_KEYS: Key[] = ["feature", "normalization", "colormap", "opacity", "thumb_size", "patch_result", "status", "steer_result", "can_steer", "live"];
const PUSH_TITLE = "↑: the class whose logit this feature's decoder direction raises most (its direct effect), not what the feature detects";

export class FeatureGalleryView extends WidgetView<FeatureGalleryTraits> {
  private readonly search: HTMLInputElement;
  private readonly sort: ReturnType<typeof select>;
  private readonly order: HTMLButtonElement;
  private readonly dead: HTMLInputElement;
  private readonly norm: ReturnType<typeof select>;
  private readonly cmap: ReturnType<typeof select>;
  private readonly pageLabel: HTMLSpanElement;
  private readonly prev: HTMLButtonElement;
  private readonly next: HTMLButtonElement;
  private readonly cardsEl: HTMLDivElement;
  private readonly detailTitle: HTMLDivElement;
  private readonly detailStats: HTMLDivElement;
  private readonly detailTop: HTMLCanvasElement;
  private readonly quantilesEl: HTMLDivElement;
  private readonly histogram: HTMLCanvasElement;
  private readonly effectsEl: HTMLDivElement;
  private readonly colorbar: HTMLCanvasElement;
  private readonly patchTitle: HTMLDivElement;
  private readonly patchList: HTMLDivElement;
  private readonly statusEl: HTMLDivElement;
  private readonly detailEl: HTMLDivElement;
  private readonly actHist: HTMLCanvasElement;
  private readonly effectHist: HTMLCanvasElement;
  private readonly steer: SteerPanel;
  private readonly framesTitle: HTMLDivElement;
  private readonly frameStrips: HTMLCanvasElement; // clips: every frame of each top clip, its activation as a bar

  private index: GalleryIndex | null = null;
  private pool: ImagePool = new ImagePool(null);
  private order_: number[] = [];
  private placed = new Map<HTMLCanvasElement, Placed[]>();
  private patchSel: { image: number; token: number; pool: number; query: number } | null = null; // query: a clip's token
  private paints = 0;

  constructor(model: Model, host: HTMLElement) {
    super(model, host, "pw-feature-gallery", "FeatureGallery");
    this.search = el("input", { cls: "pw-input pw-fg-search", attrs: { type: "search", placeholder: "feature # or class", "aria-label": "search features by index or class" } });
    this.sort = select("sort by", SORTS, "frequency", (v) => this.setTraits({ sort_by: v, page: 0 }));
    this.order = button("↓", "descending / ascending", () => this.setTraits({ descending: !this.get("descending"), page: 0 }), "pw-fg-order");
    this.dead = el("input", { attrs: { type: "checkbox" } });
    const deadField = el("label", { cls: "pw-field" }, [this.dead, el("span", { cls: "pw-field-label", text: "hide dead" })]);
    this.norm = select("colour range", [{ value: "feature", label: "feature max" }, { value: "image", label: "each image" }], "feature", (v) => this.setTraits({ normalization: v }));
    this.cmap = select("colours", COLORMAP_OPTIONS, "viridis", (v) => this.setTraits({ colormap: v }));
    const png = button("PNG", "save the current view as a PNG image", () => void this.exportPng(), "pw-fg-png");
    this.prev = button("◀", "previous page", () => this.setTraits({ page: Math.max(0, this.get("page") - 1) }), "pw-fg-prev");
    this.next = button("▶", "next page", () => this.setTraits({ page: this.get("page") + 1 }), "pw-fg-next");
    this.pageLabel = el("span", { cls: "pw-fg-page pw-export-text" });
    const toolbar = el("div", { cls: "pw-toolbar" }, [this.search, this.sort.root, this.order, deadField, this.norm.root, this.cmap.root, png]);
    const pager = el("div", { cls: "pw-fg-pager" }, [this.prev, this.pageLabel, this.next]);
    this.cardsEl = el("div", { cls: "pw-fg-cards", attrs: { role: "list", "aria-label": "features" } });
    this.detailTitle = el("div", { cls: "pw-fg-detail-title pw-export-text" });
    this.detailStats = el("div", { cls: "pw-fg-detail-stats pw-export-text" });
    this.detailTop = el("canvas", { cls: "pw-canvas pw-fg-top", attrs: { role: "img", "aria-label": "top images: click a patch for its active features" } });
    this.quantilesEl = el("div", { cls: "pw-fg-quantiles" });
    this.histogram = el("canvas", { cls: "pw-fg-histogram", attrs: { role: "img", "aria-label": "feature density histogram" } });
    this.effectsEl = el("div", { cls: "pw-fg-effects" });
    this.colorbar = el("canvas", { cls: "pw-fg-colorbar" });
    this.patchTitle = el("div", { cls: "pw-fg-section-title pw-export-text" });
    this.patchList = el("div", { cls: "pw-fg-patch-list" });
    this.statusEl = el("div", { cls: "pw-status" });
    const section = (text: string) => el("div", { cls: "pw-fg-section-title", text });
    this.actHist = el("canvas", { cls: "pw-fg-act-histogram", attrs: { role: "img", "aria-label": "activation histogram" } });
    this.effectHist = el("canvas", { cls: "pw-fg-effect-histogram", attrs: { role: "img", "aria-label": "logit effect histogram" } });
    this.steer = new SteerPanel({
      feature: () => Number(this.get("feature") ?? -1),
      canSteer: () => !!this.get("can_steer") && !!this.get("live"),
      live: () => !!this.get("live"),
      result: () => this.get("steer_result") ?? {},
      send: (request) => this.setTraits({ steer_request: request }),
    });
    this.framesTitle = section("frames of the top clips (bar: the feature's largest activation in the frame)");
    this.frameStrips = el("canvas", { cls: "pw-fg-frame-strips", attrs: { role: "img", "aria-label": "each top clip's frames and the feature's activation in each" } });
    this.detailEl = el("div", { cls: "pw-fg-detail" }, [
      this.detailTitle, this.detailStats, section("top images"), this.detailTop, this.colorbar, this.framesTitle, this.frameStrips,
      section("quantile groups (random sample of the images where it fires)"), this.quantilesEl,
      section("activations (tokens of sampled images where it fires)"), this.actHist,
      section("feature density"), this.histogram, section("class effects (direct, per unit of the feature)"), this.effectsEl,
      this.effectHist, section("steer"), this.steer.root,
      this.patchTitle, this.patchList,
    ]);
    const body = el("div", { cls: "pw-fg-body" }, [el("div", { cls: "pw-fg-list" }, [pager, this.cardsEl]), this.detailEl]);
    this.root.append(this.titleEl, toolbar, this.errorEl, body, this.statusEl);

    this.search.addEventListener("input", () => this.setTraits({ query: this.search.value, page: 0 }));
    this.dead.addEventListener("change", () => this.setTraits({ hide_dead: this.dead.checked, page: 0 }));
    this.bindShotClicks(this.detailTop);
    this.bindTraits({ data: INDEX_KEYS, look: [...CONTENT_KEYS, ...LIST_KEYS, "theme", "title"], draw: DRAW_KEYS });
    this.requestRebuild();
  }

  protected dropData(): void {
    this.index = null;
  }

  private layout(): Grid {
    return readGrid(this.model);
  }

  private featureMax(f: number): number {
    const ix = this.index;
    const i = ix?.pos.get(f);
    return ix && i !== undefined ? ix.max[i] : 0;
  }

  // ------------------------------------------------------------------ build
  protected rebuild(): void {
    try {
      this.errorEl.textContent = "";
      this.applyTheme();
      if (!this.index) this.index = readIndex(this.model);
      const title = this.get("title") ?? "";
      setText(this.titleEl, title);
      this.titleEl.style.display = title ? "" : "none";
      const px = decode(this.get("images") as EncodedArray);
      this.pool = new ImagePool(px ? { data: px.data as Uint8Array, shape: px.shape } : null);
      this.syncControls();
      this.order_ = listOrder(this.index, {
        sortBy: this.get("sort_by") ?? "frequency",
        descending: this.get("descending") !== false,
        query: this.get("query") ?? "",
        hideDead: !!this.get("hide_dead"),
      });
      const size = Number(this.get("page_size") ?? 12);
      const { ids, page } = pageOf(this.order_, Number(this.get("page") ?? 0), size);
      setText(this.pageLabel, `page ${page + 1} / ${pageCount(this.order_.length, size)} · ${this.order_.length} of ${this.index.ids.length} features`);
      this.prev.disabled = page <= 0;
      this.next.disabled = page >= pageCount(this.order_.length, size) - 1;
      const visible = (this.get("visible") ?? []).map(Number);
      if (page !== this.get("page") || JSON.stringify(ids) !== JSON.stringify(visible)) {
        this.setTraits({ page, visible: ids });
      }
      this.cardsEl.replaceChildren(...ids.map((f) => this.card(f)));
      this.root.dataset.cards = String(ids.length);
      this.draw();
    } catch (err) {
      this.showError(err);
    }
  }

  protected syncControls(): void {
    if (document.activeElement !== this.search) this.search.value = this.get("query") ?? "";
    this.sort.set(this.get("sort_by") ?? "frequency");
    const desc = this.get("descending") !== false;
    this.order.textContent = desc ? "↓" : "↑";
    this.order.setAttribute("aria-label", desc ? "descending" : "ascending");
    this.dead.checked = !!this.get("hide_dead");
    this.norm.set(this.get("normalization") ?? "feature");
    this.cmap.set(this.get("colormap") ?? "viridis");
  }

  private statsLine(f: number): string {
    const ix = this.index!;
    const i = ix.pos.get(f);
    if (i === undefined) return "";
    const classes = topClasses(ix, i).map((c) => className(ix, c));
    const cls = classes.length ? ` · pushes ↑ ${classes[0]}` : "";
    return `${formatFrequency(ix.frequency[i])} · mean ${formatValue(ix.mean[i])}${cls}`;
  }

  private card(f: number): HTMLElement {
    const canvas = el("canvas", { cls: "pw-canvas pw-fg-card-images" });
    const head = el("div", { cls: "pw-fg-card-head" }, [
      el("span", { cls: "pw-fg-card-id", text: `#${f}` }),
      el("span", { cls: "pw-fg-card-stats", text: this.statsLine(f), title: PUSH_TITLE }),
    ]);
    const card = el("div", { cls: "pw-fg-card", attrs: { role: "listitem", tabindex: "0", "data-feature": String(f) } }, [head, canvas]);
    card.addEventListener("click", (ev) => {
      if (ev.target === canvas && this.shotAt(canvas, ev)) return; // a patch click also selects (below)
      this.setTraits({ feature: f });
      this.revealDetail();
    });
    card.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") {
        ev.preventDefault();
        this.setTraits({ feature: f });
        this.revealDetail();
      }
    });
    this.bindShotClicks(canvas, f);
    return card;
  }

  /** After a card click: when the detail is below the cards (a narrow notebook) and its top is off
   * screen, scroll it into view (once it has painted the new feature). */
  private revealDetail(): void {
    const go = () => {
      const r = this.detailEl.getBoundingClientRect();
      const h = window.innerHeight || document.documentElement.clientHeight;
      if (r.height > 0 && (r.top < 0 || r.top > h - 120)) this.detailEl.scrollIntoView({ block: "start", behavior: "smooth" });
    };
    requestAnimationFrame(() => requestAnimationFrame(go));
  }

  private shotAt(canvas: HTMLCanvasElement, ev: MouseEvent): { shot: Shot; token: number } | null {
    const { x, y } = localPoint(canvas, ev);
    const lay = this.layout();
    for (const p of this.placed.get(canvas) ?? []) {
      const t = patchTokenAt(p.rect, x, y, lay.rows, lay.cols, lay.nPrefix);
      if (t >= 0) return { shot: p.shot, token: t };
    }
    return null;
  }

  private bindShotClicks(canvas: HTMLCanvasElement, feature?: number): void {
    canvas.addEventListener("click", (ev) => {
      const hit = this.shotAt(canvas, ev);
      if (!hit) return;
      const ids = (this.get("image_ids") ?? []).map(Number);
      const query = clipTokenOf(this.model, hit.shot.image, hit.token);
      this.patchSel = { image: ids[hit.shot.image], token: hit.token, pool: hit.shot.image, query };
      if (feature !== undefined && feature !== this.get("feature")) this.setTraits({ feature });
      if (!patchFeatures(this.model, this.patchSel.image, query) && this.get("live")) {
        this.setTraits({ patch_query: [this.patchSel.image, query] });
      }
      this.requestDraw();
    });
  }

  // ------------------------------------------------------------------ draw
  private caption(s: Shot): string {
    const labels = (this.get("image_labels") ?? []) as string[];
    const label = labels[s.image] ? `${labels[s.image]} · ` : "";
    return `${label}${formatValue(s.value)}`;
  }

  protected draw(): void {
    if (!this.index) return;
    try {
      const f = Number(this.get("feature") ?? -1);
      const lay = this.layout();
      const style = (feat: number): ShotStyle => ({
        colormap: this.get("colormap") ?? "viridis",
        opacity: Math.min(1, Math.max(0, Number(this.get("opacity") ?? 0.7))),
        normalization: this.get("normalization") ?? "feature",
        featureMax: this.featureMax(feat),
        theme: this.theme,
        caption: (s: Shot) => this.caption(s),
        selected: this.patchSel ? { image: this.patchSel.pool, token: this.patchSel.token } : null,
      });
      const thumb = Math.max(32, Number(this.get("thumb_size") ?? 72));
      this.placed.clear();
      this.cardsEl.querySelectorAll<HTMLElement>(".pw-fg-card").forEach((card) => {
        const id = Number(card.dataset.feature);
        card.setAttribute("aria-selected", String(id === f));
        const canvas = card.querySelector("canvas") as HTMLCanvasElement;
        const shots = cardShots(this.model, id);
        card.classList.toggle("pw-fg-loading", shots === null);
        this.placed.set(canvas, drawShots(canvas, shots ?? [], this.pool, lay, thumb, 4, style(id)));
      });
      this.drawDetail(f, lay, thumb, style(f));
      this.drawPatch();
      const status = this.get("status") ?? "";
      setText(this.statusEl, status);
      this.root.dataset.feature = String(f);
      this.root.dataset.page = String(this.get("page") ?? 0);
      this.root.dataset.paints = String(++this.paints);
    } catch (err) {
      this.showError(err);
    }
  }

  private drawDetail(f: number, lay: Grid, thumb: number, style: ShotStyle): void {
    const ix = this.index!;
    this.detailEl.style.display = f >= 0 ? "" : "none";
    if (f < 0) return;
    const detail = readDetail(this.model, f);
    setText(this.detailTitle, `feature #${f}`);
    const i = ix.pos.get(f);
    const saved = i !== undefined;
    setText(this.detailStats, !saved ? "this feature is not in this page" : detail ? `${this.statsLine(f)} · max ${formatValue(ix.max[i])}` : "loading…");
    this.placed.set(this.detailTop, drawShots(this.detailTop, detail?.top ?? [], this.pool, lay, thumb * 1.3, 4, style));
    const strips = readFrameStrips(this.model, f);
    for (const e of [this.framesTitle, this.frameStrips]) e.style.display = strips.length ? "" : "none";
    if (strips.length) drawFrameStrips(this.frameStrips, strips, this.pool, (this.get("image_labels") ?? []) as string[], thumb * 0.8, this.theme);
    this.root.dataset.frameStrips = String(strips.length);
    const groups = (detail?.quantiles ?? []).map((g, gi) => {
      const c = el("canvas", { cls: "pw-canvas pw-fg-quantile" });
      this.bindShotClicks(c);
      this.placed.set(c, drawShots(c, g.shots, this.pool, lay, thumb * 0.8, 4, style));
      return el("div", { cls: "pw-fg-quantile-group" }, [
        el("div", { cls: "pw-fg-quantile-label pw-export-text", text: `group ${gi + 1}: ${formatValue(g.low)} – ${formatValue(g.high)}` }),
        c,
      ]);
    });
    this.quantilesEl.replaceChildren(...groups);
    drawMapColorbar(this.colorbar, style);
    // density histogram: every feature, this one marked
    const edges = (this.get("density_edges") ?? []).map(Number);
    const counts = (this.get("density_counts") ?? []).map(Number);
    drawHistogram(this.histogram, counts, edges, saved ? densityBin(edges, ix.frequency[i]) : -1, this.theme);
    // class effects
    const rows = (title: string, list: { cls: number; value: number }[]) =>
      el("div", { cls: "pw-fg-effect-col" }, [
        el("div", { cls: "pw-fg-effect-title", text: title }),
        ...list.map((e) => el("div", { cls: "pw-fg-effect" }, [el("span", { cls: "pw-fg-effect-name", text: className(ix, e.cls) }), el("span", { cls: "pw-fg-effect-value", text: formatValue(e.value) })])),
      ]);
    const note = this.get("readout_note") ?? "";
    const effects = detail && (detail.topEffects.length || detail.bottomEffects.length)
      ? [rows("top", detail.topEffects), rows("bottom", detail.bottomEffects)]
      : [el("div", { cls: "pw-fg-note", text: note || "no class effects" })];
    this.effectsEl.replaceChildren(...effects);
    this.effectsEl.title = note;
    const act = readHistogram(this.model, f, "act_hist_counts", "act_hist_edges");
    drawBars(this.actHist, act, "activation (0 to the feature's max), count", this.theme, "no activations sampled");
    const eff = readHistogram(this.model, f, "effect_hist_counts", "effect_hist_edges");
    drawBars(this.effectHist, eff, "direct effect on each class logit, count of classes", this.theme, note || "no class effects");
    this.steer.render();
  }

  private drawPatch(): void {
    const sel = this.patchSel;
    if (!sel) {
      setText(this.patchTitle, "click a patch of any image: the features active there");
      this.patchList.replaceChildren();
      return;
    }
    const labels = (this.get("image_labels") ?? []) as string[];
    const name = labels[sel.pool] ? ` (${labels[sel.pool]})` : "";
    const lay = this.layout();
    const p = sel.token - lay.nPrefix;
    const where = p >= 0 ? `r${Math.floor(p / lay.cols)}c${p % lay.cols}` : `prefix token ${sel.token}`;
    setText(this.patchTitle, `image ${sel.image}${name}, patch ${where}: active features`);
    const found = patchFeatures(this.model, sel.image, sel.query);
    if (!found) {
      const live = !!this.get("live");
      this.patchList.replaceChildren(el("div", { cls: "pw-fg-note", text: live ? "asking the kernel…" : "not available: this page holds no look-up for this image" }));
      return;
    }
    const ix = this.index!;
    const items = found.features.map((f, k) => {
      const known = ix.pos.has(f);
      const b = button(`#${f} ${formatValue(found.values[k])}`, known ? `open feature #${f}` : `feature #${f} is not in this page`, () => this.setTraits({ feature: f }), "pw-fg-patch-feature");
      b.disabled = !known;
      return b;
    });
    this.patchList.replaceChildren(...(items.length ? items : [el("div", { cls: "pw-fg-note", text: "no feature fires here" })]));
  }

  protected pngName(): string {
    return `feature_gallery_${this.get("feature")}.png`;
  }
}

export const render = renderWith(FeatureGalleryView);

export default { render };
