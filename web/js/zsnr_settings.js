// zsnr's settings, in the frontend's settings dialog (Settings → zsnr): whether the live preview asks
// the server at all, and how long the prediction-mismatch toast stays. Registered and read through the
// frontend's settings API (app.registerExtension({ settings }), app.extensionManager.setting; documented
// at docs.comfy.org/custom-nodes/js/javascript_settings), which stores them per user on the server.
//
// A module of its own so zsnr.js (the preview) and zsnr_report.js (the toast) share one place for the
// ids and defaults; the frontend also imports it as an extension (every .js under web/js), and the
// others import it by the same URL, so all share one module instance (as with zsnr_graph.js).
import { app } from "../../../scripts/app.js";

export const LIVE_PREVIEW = "zsnr.LivePreview.Enabled";
export const TOAST_SECONDS = "zsnr.PredictionWarning.ToastSeconds";
const DEFAULTS = { [LIVE_PREVIEW]: true, [TOAST_SECONDS]: 20 };
const listeners = new Map(); // setting id -> callbacks run after the user changes it

// The setting's value, or its default where the frontend has none stored (or no settings API).
export function setting(id) {
  try {
    return app.extensionManager?.setting?.get?.(id) ?? DEFAULTS[id];
  } catch {
    return DEFAULTS[id];
  }
}

export function onSettingChange(id, callback) {
  listeners.set(id, [...(listeners.get(id) ?? []), callback]);
}

// The frontend calls onChange when the setting is registered (page load) and on every change.
function changed(id) {
  return (value, old) => {
    if (value === old) return;
    for (const callback of listeners.get(id) ?? []) {
      try {
        callback(value);
      } catch (error) {
        console.warn(`zsnr setting ${id}:`, error);
      }
    }
  };
}

app.registerExtension({
  name: "zsnr.settings",
  settings: [
    {
      id: LIVE_PREVIEW,
      category: ["zsnr", "Live preview", "Enabled"],
      name: "Live preview in Timestep Spacing Scheduler and Schedule Plot",
      tooltip: "Off: the nodes show no plot and the page never asks the server for one until it is turned on again.",
      type: "boolean",
      defaultValue: DEFAULTS[LIVE_PREVIEW],
      onChange: changed(LIVE_PREVIEW),
    },
    {
      id: TOAST_SECONDS,
      category: ["zsnr", "Prediction warning", "Toast seconds"],
      name: "Seconds the wrong-prediction-type toast stays (0: until closed)",
      tooltip: "The warning also stays on the node that declared the prediction, whatever this says.",
      type: "number",
      defaultValue: DEFAULTS[TOAST_SECONDS],
      attrs: { min: 0, max: 3600, step: 1 },
      onChange: changed(TOAST_SECONDS),
    },
  ],
});
