// Classic-script wrapper used by `save_html`: registers the widget's render function on a global
// so the inlined page can call it without ES-module loading (blocked or flaky from file:// and
// sandboxed iframes).
import widget from "pw-widget-entry";

declare const __PW_WIDGET_NAME__: string;

type Registry = Record<string, unknown>;
const g = globalThis as unknown as { __prisma_widgets?: Registry };
g.__prisma_widgets = g.__prisma_widgets ?? {};
g.__prisma_widgets[__PW_WIDGET_NAME__] = widget;
