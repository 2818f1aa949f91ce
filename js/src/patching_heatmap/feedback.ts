// PatchingHeatmap's kernel feedback, placed right above the heatmap where the user looks: the sweep's
// progress bar, its status line, a failure message, and the marks that say the result shown is not the
// painted corruption's. A passing note fades after NOTE_MS (a running sweep's line stays while it runs);
// a failure stays, over the heatmap, and the result under it is dimmed and labelled as the previous one
// until a sweep runs (dismissing the message keeps that label). Text goes in via textContent only.
import { button, el, setText } from "../shared/dom";

/** How long a status note (not a failure, not a running sweep) stays up. */
export const NOTE_MS = 8000;

export interface FeedbackState {
  /** 0..1 */
  progress: number;
  status: string;
  error: string;
  /** the painted patches are not those of the result shown (Run has not been pressed) */
  pending: boolean;
}

export class KernelFeedback {
  /** the elements, in order, for the column above the heatmap */
  readonly parts: HTMLElement[];
  private readonly fill = el("div", { cls: "pw-ph-progress-fill" });
  private readonly bar = el("div", { cls: "pw-ph-progress", attrs: { role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100" } }, [this.fill]);
  private readonly status = el("div", { cls: "pw-status pw-ph-status", attrs: { "aria-live": "polite" } });
  private readonly alertText = el("div", { cls: "pw-ph-alert-text" });
  private readonly alert: HTMLDivElement;
  private readonly staleTag = el("div", { cls: "pw-ph-stale-tag", text: "previous result: the last Run did not run" });
  private readonly pending = el("div", { cls: "pw-ph-pending", text: "the painted patches are not this result's corruption yet: press ▶ Run" });
  private shown = "";
  private timer: ReturnType<typeof setTimeout> | null = null;
  private dismissed = "";

  constructor(private readonly root: HTMLElement) {
    const close = button("×", "hide this message (the result stays marked as the previous one)", () => this.dismiss(), "pw-ph-alert-close");
    this.alert = el("div", { cls: "pw-ph-alert", attrs: { role: "alert" } }, [this.alertText, close]);
    this.parts = [this.bar, this.status, this.alert, this.staleTag, this.pending];
    for (const p of this.parts) p.style.display = "none";
  }

  show(s: FeedbackState): void {
    const p = Math.max(0, Math.min(1, s.progress));
    const running = p > 0 && p < 1;
    this.fill.style.width = `${(p * 100).toFixed(1)}%`;
    this.bar.setAttribute("aria-valuenow", String(Math.round(p * 100)));
    this.bar.style.display = running ? "" : "none";
    this.root.dataset.progress = p.toFixed(3);
    const status = s.status === s.error ? "" : s.status; // a failure is shown once, in the alert
    if (status !== this.shown || running) this.note(status, running);
    const failed = !!s.error;
    setText(this.alertText, s.error);
    this.alert.style.display = failed && s.error !== this.dismissed ? "" : "none";
    this.staleTag.style.display = failed ? "" : "none";
    this.root.classList.toggle("pw-ph-is-stale", failed);
    this.root.dataset.error = failed ? "1" : "0";
    if (!failed) this.dismissed = "";
    this.pending.style.display = s.pending && !failed && !running ? "" : "none";
    this.root.dataset.pending = s.pending ? "1" : "0";
  }

  /** A note from the view itself (before the kernel answers). */
  local(text: string): void {
    this.note(text, false);
  }

  destroy(): void {
    if (this.timer) clearTimeout(this.timer);
  }

  private note(text: string, running: boolean): void {
    this.shown = text;
    setText(this.status, text);
    this.status.style.display = text ? "" : "none";
    this.root.dataset.status = text;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (text && !running) {
      this.timer = setTimeout(() => {
        this.status.style.display = "none";
        this.root.dataset.status = "";
      }, NOTE_MS);
    }
  }

  private dismiss(): void {
    this.dismissed = this.alertText.textContent ?? "";
    this.alert.style.display = "none";
  }
}
