// FeatureGallery's steering panel: zero the selected feature, double it or clamp it to a value, and see
// the class (or prompt) probabilities move. Python runs the model (`steer_request` -> `steer_result`); a
// saved page has no kernel, so it says so instead of showing controls that cannot answer.
import { button, el, setText } from "../shared/dom";
import { formatValue } from "../shared/scale";
import type { SteerRequest, SteerResult } from "./traits";

export interface SteerHost {
  /** the feature in the detail view */
  feature(): number;
  /** whether the kernel can steer (model + SAE + a readout), and whether there is a kernel at all */
  canSteer(): boolean;
  live(): boolean;
  result(): SteerResult;
  send(request: SteerRequest): void;
}

/** Percent points with a sign: "+12.3 pp", "-0.4 pp". */
export function percentPoints(delta: number): string {
  const v = delta * 100;
  return `${v >= 0 ? "+" : "−"}${Math.abs(v) < 0.05 ? Math.abs(v).toFixed(2) : Math.abs(v).toFixed(1)} pp`;
}

/** What a request asks, in words ("zero", "×2", "clamp to 10"). */
export function describeEdit(op: string | undefined, value: number | undefined): string {
  if (op === "zero") return "zeroed";
  if (op === "scale") return `×${formatValue(value ?? 0)}`;
  return `clamped to ${formatValue(value ?? 0)}`;
}

export class SteerPanel {
  readonly root: HTMLDivElement;
  private readonly controls: HTMLDivElement;
  private readonly clampValue: HTMLInputElement;
  private readonly out: HTMLDivElement;
  private pending: SteerRequest | null = null;
  private count = 0;

  constructor(private readonly host: SteerHost) {
    this.clampValue = el("input", { cls: "pw-input pw-fg-steer-value", attrs: { type: "number", step: "any", value: "10", "aria-label": "clamp value" } });
    const ask = (op: SteerRequest["op"], value: number) => {
      if (!Number.isFinite(value)) {
        setText(this.out, "type a finite number to clamp to");
        return;
      }
      this.pending = { feature: this.host.feature(), op, value, n: ++this.count };
      this.host.send(this.pending);
      this.render();
    };
    this.controls = el("div", { cls: "pw-fg-steer-controls" }, [
      button("zero", "set this feature to 0 on every token, then rerun the model on its top images", () => ask("zero", 0), "pw-fg-steer-zero"),
      button("×2", "double this feature on every token, then rerun", () => ask("scale", 2), "pw-fg-steer-double"),
      button("clamp to", "set this feature to the value on every token, then rerun", () => ask("clamp", Number(this.clampValue.value)), "pw-fg-steer-clamp"),
      this.clampValue,
    ]);
    this.out = el("div", { cls: "pw-fg-steer-out" });
    this.root = el("div", { cls: "pw-fg-steer" }, [this.controls, this.out]);
  }

  render(): void {
    const f = this.host.feature();
    if (!this.host.canSteer()) {
      this.controls.style.display = "none";
      const why = this.host.live()
        ? "steering needs the model and the SAE in the kernel, and a model that reads out classes or prompts"
        : "steering runs the model, so it needs a running kernel: this saved page cannot (open the notebook to steer)";
      this.out.replaceChildren(el("div", { cls: "pw-fg-note", text: why }));
      return;
    }
    this.controls.style.display = "";
    const r = this.host.result() ?? {};
    const waiting = this.pending && this.pending.feature === f && !(r.feature === f && r.op === this.pending.op && r.value === this.pending.value);
    if (r.error && !waiting) {
      this.out.replaceChildren(el("div", { cls: "pw-fg-note", text: r.error }));
      return;
    }
    if (waiting) {
      this.out.replaceChildren(el("div", { cls: "pw-fg-note", text: "asking the kernel…" }));
      return;
    }
    if (r.feature !== f || !r.classes) {
      this.out.replaceChildren(el("div", { cls: "pw-fg-note", text: "edit the feature on its top images: the class probabilities that move most" }));
      return;
    }
    const head = el("div", { cls: "pw-fg-note", text: `feature ${describeEdit(r.op, r.value)} on ${r.images ?? 0} top images, error term kept: mean probability before → after` });
    const rows = r.classes.map((c, i) => {
      const before = r.before?.[i] ?? 0;
      const after = r.after?.[i] ?? 0;
      const name = r.names?.[i] ?? `class ${c}`;
      return el("div", { cls: "pw-fg-steer-row" }, [
        el("span", { cls: "pw-fg-effect-name", text: name }),
        el("span", { cls: "pw-fg-effect-value", text: `${(before * 100).toFixed(1)}% → ${(after * 100).toFixed(1)}%` }),
        el("span", { cls: `pw-fg-steer-delta ${after >= before ? "pw-fg-up" : "pw-fg-down"}`, text: percentPoints(after - before) }),
      ]);
    });
    const note = r.note ? [el("div", { cls: "pw-fg-note pw-fg-steer-note", text: r.note })] : [];
    this.out.replaceChildren(head, ...rows, ...note);
  }
}
