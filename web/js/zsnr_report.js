// zsnr patch report and prediction warning, on the node itself. After a run, ZeroTerminalSNR and
// VPredictionAdapter send what they found and did as a `zsnr_report` UI output (nodes/patch_report.py);
// when the model's first output contradicts the declared prediction the server sends
// `zsnr.prediction_mismatch` (nodes/prediction_check.py). Both are shown in a read-only text widget on
// the node that declared the prediction, and the warning also as a toast (its duration: zsnr_settings.js).
// When a later node replaced zsnr's ModelSampling, the server sends `zsnr.sampling_replaced`
// (nodes/replaced_sampling.py) naming the sampler node that ran without it: shown there. Both renderers (classic
// canvas and Nodes 2.0): a DOM widget, and the api's own events instead of node callbacks.
// Help: web/docs/ZeroTerminalSNR.md, web/docs/VPredictionAdapter.md.
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";
import { TOAST_SECONDS, setting } from "./zsnr_settings.js";

const REPORT_NODES = new Set(["ZeroTerminalSNR", "VPredictionAdapter"]);
const LINE_HEIGHT = 15;
const MAX_ROWS = 30; // beyond this the text scrolls inside the widget
const STYLE = "margin:0;padding:4px 6px;box-sizing:border-box;width:100%;height:100%;overflow:auto;" +
  "white-space:pre-wrap;font:11px/15px monospace;border-radius:4px;background:#1b1d21;color:#ddd;";

function nodeClass(node) {
  return node?.comfyClass ?? node?.type;
}

// an execution id is a node id, or "outer:inner" for a node inside a subgraph
function findNode(executionId, graph = app.graph) {
  const [head, ...rest] = String(executionId).split(":");
  const node = graph?.getNodeById?.(Number(head)) ?? graph?.getNodeById?.(head);
  if (!node || rest.length === 0) return node;
  return findNode(rest.join(":"), node.subgraph);
}

function reportWidget(node) {
  if (node.zsnrReport) return node.zsnrReport;
  const element = document.createElement("pre");
  element.className = "zsnr-report";
  element.style.cssText = STYLE;
  const state = { element, text: "", warning: "" };
  // rows once wrapped at the node's width (11px monospace: about 6.6px a character)
  const lines = () => {
    const perRow = Math.max(24, Math.floor(((node.size?.[0] ?? 300) - 24) / 6.6));
    const text = state.warning ? `⚠ ${state.warning}\n\n${state.text}` : state.text;
    return text.split("\n").reduce((rows, line) => rows + Math.max(1, Math.ceil(line.length / perRow)), 1);
  };
  const widget = node.addDOMWidget("zsnr_report", "zsnr_report", element, {
    serialize: false,
    hideOnZoom: false,
    getMinHeight: () => Math.min(MAX_ROWS, lines()) * LINE_HEIGHT,
  });
  widget.serialize = false; // never part of widgets_values, so saved workflows keep their layout
  state.show = () => {
    element.textContent = state.warning ? `⚠ ${state.warning}\n\n${state.text}` : state.text;
    element.style.color = state.warning ? "#ffb36b" : "#ddd";
    const size = node.computeSize?.();
    if (size && node.size && size[1] > node.size[1]) node.setSize?.([Math.max(node.size[0], size[0]), size[1]]);
    node.setDirtyCanvas?.(true, true);
  };
  node.zsnrReport = state;
  return state;
}

function showReport(executionId, output) {
  const text = output?.zsnr_report?.[0];
  const node = text === undefined ? null : findNode(executionId);
  if (!node || !REPORT_NODES.has(nodeClass(node))) return;
  const state = reportWidget(node);
  state.text = text;
  state.warning = ""; // a new run of this node: a warning belongs to the sampling that follows
  state.show();
}

function showWarning(detail, summary = "zsnr: wrong prediction type?", onAnyNode = false) {
  const node = detail?.node_id == null ? null : findNode(detail.node_id);
  if (node && (onAnyNode || REPORT_NODES.has(nodeClass(node)))) {
    const state = reportWidget(node);
    state.warning = detail.message;
    state.show();
  }
  const toast = app.extensionManager?.toast;
  if (toast?.add) {
    // Settings → zsnr → Prediction warning; 0 leaves out `life`, which keeps a toast until closed
    const seconds = Number(setting(TOAST_SECONDS));
    const life = seconds > 0 ? { life: seconds * 1000 } : {};
    toast.add({ severity: "warn", summary, detail: detail?.message, ...life });
  } else {
    console.warn("zsnr:", detail?.message);
  }
}

app.registerExtension({
  name: "zsnr.patchReport",
  setup() {
    api.addEventListener("executed", ({ detail }) => {
      try {
        showReport(detail?.display_node ?? detail?.node, detail?.output);
      } catch (error) {
        console.warn("zsnr report:", error);
      }
    });
    api.addEventListener("zsnr.prediction_mismatch", ({ detail }) => {
      try {
        showWarning(detail);
      } catch (error) {
        console.warn("zsnr prediction check:", error);
      }
    });
    api.addEventListener("zsnr.sampling_replaced", ({ detail }) => {
      try {
        showWarning(detail, "zsnr: ModelSampling replaced", true);
      } catch (error) {
        console.warn("zsnr sampling replaced:", error);
      }
    });
  },
});
