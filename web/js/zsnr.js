// zsnr live preview: the timesteps a spacing selects, drawn on the model's log-SNR curve inside the
// Timestep Spacing Scheduler and Schedule Plot nodes, refreshed as spacing / steps / denoise /
// steps_offset, the model chain or the latent's size change, without queueing a prompt. The query
// is read from the graph in zsnr_graph.js; this module draws the answer and hooks the nodes. The
// numbers come from the pack's Python (GET /zsnr/timesteps), never from a second implementation
// here. Errors stay in the widget. Settings → zsnr turns it off (zsnr_settings.js).
// Help: web/docs/TimestepSpacingScheduler.md, web/docs/ZSNRSchedulePlot.md.
//
// Both frontend renderers: the classic LiteGraph canvas and "Nodes 2.0" (setting
// Comfy.VueNodes.Enabled). The preview is a DOM widget (node.addDOMWidget, a <canvas>), which both
// show; changes are noticed through each widget's own `callback` (both renderers call it; the Vue
// one never calls node.onWidgetChanged nor onDrawForeground), every node's onConnectionsChange
// (links), the `mode` setter of the nodes a model chain or a latent depends on (bypass), the
// frontend's `graphChanged` event (undo, loading) and, on the classic canvas, the node's redraw.
//
// Longer than 250 lines: the drawing and the hooks share one state object per preview.
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";
import {
  MODE_NODES, PREVIEW_NODES, SIZE_SOURCE_WIDGET, SIZE_WIDGETS, UPSTREAM_WIDGETS, WATCHED_WIDGETS,
  hasSizeWidgets, nodeClass, previewQuery,
} from "./zsnr_graph.js";
import { LIVE_PREVIEW, onSettingChange, setting } from "./zsnr_settings.js";

const DEBOUNCE_MS = 200;
const WIDGET_HEIGHT = 140;
const HEADER_LINE = 13; // px per header line (11px text)
const COLOURS = {
  background: "#1b1d21", frame: "#555", text: "#ddd", dim: "#999", curve: "#5b9bea",
  original: "#8a8a8a", marks: "#f0902a", snrZero: "#e0434f", error: "#ff7b7b",
};
const previews = new Set(); // the state of every attached preview, for upstream changes
const OFF_TEXT = "live preview off (Settings → zsnr → Live preview)";

// What a change of the graph must change for a preview to ask again.
function queryKey(query) {
  return JSON.stringify([query.params, query.marksKnown, query.latentUnknown]);
}

// The header's parts: what was asked, and for a spacing that reads the latent size, which size.
// Which spacings read it is the route's word (reads_latent_size), so no list of them lives here.
function headerParts(state) {
  const p = state.params;
  if (!p) return [];
  const parts = ["log-SNR", p.spacing, `${p.steps} steps`, p.schedule];
  if (state.answer?.spacing === p.spacing && state.answer.reads_latent_size) {
    if (p.latent_height) parts.push(`${p.latent_height}×${p.latent_width} latent`);
    else parts.push(state.latentUnknown ? "64×64 reference (latent sized at run time)" : "64×64 reference");
  }
  return parts;
}

// Draws the answer and returns what it drew (state.drawn, read by the browser tests).
function drawPreview(canvas, state) {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(canvas.clientWidth, 60);
  const height = Math.max(canvas.clientHeight, 60);
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.fillStyle = COLOURS.background;
  ctx.fillRect(0, 0, width, height);
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "top";
  const parts = headerParts(state);
  const header = parts.join(" · ");
  const drawn = { width, height, header, status: state.status, marks: [], snrZeroMarks: 0, snrZeroArrow: false,
                  topLogSnr: null, latentSize: null, markTimesteps: [] };
  ctx.fillStyle = COLOURS.text;
  const top = 4 + HEADER_LINE * wrapText(ctx, parts, 6, 4, width - 12, HEADER_LINE, " · ") + 3;
  if (state.status === "error") {
    ctx.fillStyle = COLOURS.error;
    wrapText(ctx, String(state.error).split(" "), 6, top, width - 12, HEADER_LINE);
    return drawn;
  }
  const answer = state.answer;
  if (!answer) {
    ctx.fillStyle = COLOURS.dim;
    if (state.status === "off") wrapText(ctx, OFF_TEXT.split(" "), 6, top, width - 12, HEADER_LINE);
    else ctx.fillText(state.status === "loading" ? "loading…" : "", 6, top);
    return drawn;
  }
  drawn.latentSize = answer.latent_size ?? null; // the size the route spaced for (null: the reference)
  const plot = { left: 26, top, right: width - 8, bottom: height - 16 };
  const curves = [answer.log_snr_curve, answer.original_log_snr_curve].filter(Boolean);
  const finite = curves.flat().concat(answer.log_snr).filter((v) => v !== null);
  let low = Math.min(...finite);
  const high = Math.max(...finite);
  low -= (high - low) * 0.12; // room for the SNR-0 arrow below the last finite value
  const last = answer.T - 1;
  const x = (t) => plot.left + (t / last) * (plot.right - plot.left);
  const y = (v) => plot.bottom - ((v - low) / (high - low)) * (plot.bottom - plot.top);
  ctx.strokeStyle = COLOURS.frame;
  ctx.lineWidth = 1;
  ctx.strokeRect(plot.left, plot.top, plot.right - plot.left, plot.bottom - plot.top);
  ctx.fillStyle = COLOURS.dim;
  ctx.textAlign = "right";
  ctx.fillText(`${Math.round(high)}`, plot.left - 3, plot.top);
  ctx.textBaseline = "bottom";
  ctx.fillText(`${Math.round(low)}`, plot.left - 3, plot.bottom);
  ctx.textBaseline = "top";
  ctx.textAlign = "left";
  ctx.fillText("t = 0", plot.left, plot.bottom + 3);
  ctx.textAlign = "right";
  ctx.fillText(`t = ${last}`, plot.right, plot.bottom + 3);
  ctx.textAlign = "left";
  if (answer.original_log_snr_curve) strokeCurve(ctx, answer.original_log_snr_curve, x, y, COLOURS.original, [4, 3]);
  strokeCurve(ctx, answer.log_snr_curve, x, y, COLOURS.curve, []);
  drawn.topLogSnr = answer.log_snr_curve[last];
  if (answer.log_snr_curve[last] === null) { // exact SNR 0: an arrow off the bottom, never a number
    drawn.snrZeroArrow = true;
    const above = answer.log_snr_curve.slice(0, last).filter((v) => v !== null).at(-1);
    ctx.strokeStyle = ctx.fillStyle = COLOURS.snrZero;
    ctx.beginPath();
    ctx.moveTo(x(last), y(above));
    ctx.lineTo(x(last), plot.bottom - 6);
    ctx.stroke();
    ctx.beginPath();
    ctx.moveTo(x(last), plot.bottom);
    ctx.lineTo(x(last) - 4, plot.bottom - 7);
    ctx.lineTo(x(last) + 4, plot.bottom - 7);
    ctx.fill();
    ctx.textAlign = "right";
    ctx.textBaseline = "bottom";
    ctx.fillText("SNR = 0 (log-SNR = -inf)", x(last) - 6, plot.bottom - 2);
  } else if (answer.terminal && answer.terminal !== "none") { // a clamp: a finite top, labelled
    ctx.fillStyle = COLOURS.dim;
    ctx.textAlign = "right";
    ctx.textBaseline = "bottom";
    ctx.fillText(`${answer.terminal}: log-SNR = ${drawn.topLogSnr.toFixed(2)} at t = ${last}`, x(last) - 8, plot.bottom - 2);
  }
  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  if (!state.marksKnown) {
    ctx.fillStyle = COLOURS.dim;
    ctx.fillText("steps: from the SIGMAS input at run time", plot.left + 4, plot.top + 3);
    return drawn;
  }
  ctx.fillStyle = COLOURS.marks;
  answer.timesteps.forEach((t, i) => {
    const value = answer.log_snr[i];
    drawn.markTimesteps.push(t);
    ctx.beginPath();
    if (value === null) {
      drawn.snrZeroMarks += 1;
      ctx.moveTo(x(t), plot.bottom - 1); // a step at SNR 0: a triangle on the bottom edge
      ctx.lineTo(x(t) - 5, plot.bottom - 9);
      ctx.lineTo(x(t) + 5, plot.bottom - 9);
    } else {
      drawn.marks.push([Math.round(x(t) * 10) / 10, Math.round(y(value) * 10) / 10]);
      ctx.arc(x(t), y(value), 3, 0, 2 * Math.PI);
    }
    ctx.fill();
  });
  return drawn;
}

function strokeCurve(ctx, values, x, y, colour, dash) {
  ctx.strokeStyle = colour;
  ctx.lineWidth = 1.5;
  ctx.setLineDash(dash);
  ctx.beginPath();
  let drawing = false;
  values.forEach((v, t) => {
    if (v === null) {
      drawing = false;
      return;
    }
    drawing ? ctx.lineTo(x(t), y(v)) : ctx.moveTo(x(t), y(v));
    drawing = true;
  });
  ctx.stroke();
  ctx.setLineDash([]);
}

// Draws `words` joined by `separator`, broken into lines of at most `width`; returns the line count.
function wrapText(ctx, words, left, top, width, lineHeight, separator = " ") {
  let line = "";
  let lines = 1;
  for (const word of words) {
    const candidate = line ? `${line}${separator}${word}` : word;
    if (ctx.measureText(candidate).width > width && line) {
      ctx.fillText(line, left, top);
      top += lineHeight;
      lines += 1;
      line = word;
    } else {
      line = candidate;
    }
  }
  ctx.fillText(line, left, top);
  return lines;
}

async function fetchTimesteps(params, signal) {
  const query = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)]));
  const response = await api.fetchApi(`/zsnr/timesteps?${query}`, { signal });
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(body.error ?? `HTTP ${response.status}`);
  return body;
}

// Chains `onChange` after the callback of each named widget (both renderers call a widget's callback
// on a user edit; the Vue renderer's own wrapper, installed when the node is added, keeps ours).
function hookWidgets(node, names, onChange) {
  for (const widget of node.widgets ?? []) {
    if (!names.includes(widget.name)) continue;
    const original = widget.callback;
    widget.callback = function (...args) {
      const result = original?.apply(this, args);
      onChange(widget.name);
      return result;
    };
  }
}

// A bypass (Ctrl+B, the selection toolbox) only sets node.mode. The frontend makes `mode` an accessor:
// of each node up to 1.49 (litegraph's LGraphNodeProperties, which tells Nodes 2.0), of LGraphNode's
// prototype in 1.58. The nearest setter is chained on the node itself so the previews re-check
// (Nodes 2.0 neither redraws the canvas nor raises graphChanged on a bypass); where there is none,
// the classic canvas's redraw notices the change.
function modeAccessor(node) {
  for (let owner = node; owner; owner = Object.getPrototypeOf(owner)) {
    const descriptor = Object.getOwnPropertyDescriptor(owner, "mode");
    if (descriptor) return descriptor.set && (owner !== node || descriptor.configurable) ? descriptor : null;
  }
  return null;
}

function hookMode(node, onChange) {
  const descriptor = modeAccessor(node);
  if (!descriptor) return;
  Object.defineProperty(node, "mode", {
    get: descriptor.get,
    set(value) {
      descriptor.set.call(this, value);
      onChange();
    },
    enumerable: descriptor.enumerable,
    configurable: true,
  });
}

function recheckPreviews() {
  for (const state of previews) state.check();
}

function attachPreview(node) {
  const element = document.createElement("div");
  element.className = "zsnr-preview";
  element.style.cssText = "width:100%;height:100%;min-height:90px;box-sizing:border-box;";
  const canvas = document.createElement("canvas");
  canvas.style.cssText = "width:100%;height:100%;display:block;border-radius:4px;";
  element.appendChild(canvas);
  const widget = node.addDOMWidget("zsnr_preview", "zsnr_preview", element, {
    serialize: false,
    hideOnZoom: false,
    getMinHeight: () => WIDGET_HEIGHT,
    getMaxHeight: () => WIDGET_HEIGHT + 60,
  });
  widget.serialize = false; // never part of widgets_values, so saved workflows keep their layout

  const state = { status: "idle", params: null, answer: null, error: null, marksKnown: true, source: null,
                  latentUnknown: false, timesteps: [], requests: 0, draws: 0, drawn: null, key: null, canvas, node };
  node.zsnrPreview = state;
  let timer = null;
  let controller = null;

  const redraw = () => {
    if (!canvas.isConnected) return; // a node in a subgraph not shown: drawn once it is mounted
    try {
      state.drawn = drawPreview(canvas, state);
      state.draws += 1;
    } catch (error) {
      console.warn("zsnr preview: drawing failed", error);
    }
  };
  const refresh = async () => {
    timer = null;
    const query = previewQuery(node);
    controller?.abort();
    if (!setting(LIVE_PREVIEW)) { // turned off: no request; the key still follows, so check() rests
      controller = null;
      Object.assign(state, { status: "off", ...query, key: queryKey(query), answer: null, error: null, timesteps: [] });
      redraw();
      return;
    }
    controller = new AbortController();
    const mine = controller;
    Object.assign(state, { status: "loading", ...query, key: queryKey(query), error: null });
    state.requests += 1;
    redraw();
    try {
      const answer = await fetchTimesteps(query.params, mine.signal);
      if (mine !== controller) return; // a newer request replaced this one
      Object.assign(state, { status: "ok", answer, timesteps: answer.timesteps, steps: answer.steps,
                             spacing: answer.spacing, terminal: answer.terminal });
    } catch (error) {
      if (mine !== controller || error?.name === "AbortError") return;
      Object.assign(state, { status: "error", answer: null, timesteps: [], error: error?.message ?? String(error) });
    }
    redraw();
    node.setDirtyCanvas?.(true, false);
  };
  const schedule = () => {
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => refresh().catch((e) => console.warn("zsnr preview:", e)), DEBOUNCE_MS);
  };
  // refresh only when the query changed: upstream edits, relinks, programmatic value changes
  state.check = () => {
    try {
      if (!node.graph || node.graph.getNodeById(node.id) !== node) return;
      if (timer === null && state.key !== queryKey(previewQuery(node))) schedule();
    } catch (error) {
      console.warn("zsnr preview:", error);
    }
  };
  state.refresh = schedule;
  previews.add(state);

  // the node's own widgets; a plot node fed by this scheduler follows through recheckPreviews
  hookWidgets(node, WATCHED_WIDGETS, () => {
    schedule();
    setTimeout(recheckPreviews, 0);
  });
  // the classic canvas redraws the node after any edit, so anything missed is noticed here
  const onDrawForeground = node.onDrawForeground;
  node.onDrawForeground = function (...args) {
    const result = onDrawForeground?.apply(this, args);
    state.check();
    return result;
  };
  const resizeObserver = new ResizeObserver(redraw); // also fires when the element is mounted
  resizeObserver.observe(element);
  const onRemoved = node.onRemoved;
  node.onRemoved = function (...args) {
    if (timer !== null) clearTimeout(timer);
    controller?.abort();
    resizeObserver.disconnect();
    previews.delete(state);
    return onRemoved?.apply(this, args);
  };
  schedule();
}

// turned on or off in the settings: every preview asks again (or shows that it is off)
onSettingChange(LIVE_PREVIEW, () => {
  for (const state of previews) state.refresh();
});

app.registerExtension({
  name: "zsnr.livePreview",
  setup() {
    // the frontend's change tracker: links, added or removed nodes, undo, subgraph conversion
    api.addEventListener("graphChanged", () => setTimeout(recheckPreviews, 0));
  },
  nodeCreated(node) {
    const cls = nodeClass(node);
    try {
      // a link made or removed anywhere may change a preview's model chain; litegraph tells both
      // ends of the link in both renderers (a link dragged on Nodes 2.0 raises no graphChanged)
      const onConnectionsChange = node.onConnectionsChange;
      node.onConnectionsChange = function (...args) {
        const result = onConnectionsChange?.apply(this, args);
        setTimeout(recheckPreviews, 0); // after the link is in place
        return result;
      };
      const recheck = () => setTimeout(recheckPreviews, 0);
      if (UPSTREAM_WIDGETS[cls] && !PREVIEW_NODES.has(cls)) hookWidgets(node, UPSTREAM_WIDGETS[cls], recheck);
      // a latent's or a recorded size in pixels (zsnr_graph.js, previewQuery)
      if (hasSizeWidgets(node)) hookWidgets(node, SIZE_WIDGETS, recheck);
      // a primitive feeding one: Nodes 2.0 neither redraws the canvas nor raises graphChanged on its edit
      hookWidgets(node, [SIZE_SOURCE_WIDGET], recheck);
      if (MODE_NODES.has(cls) || hasSizeWidgets(node)) hookMode(node, recheck);
      if (PREVIEW_NODES.has(cls)) attachPreview(node);
    } catch (error) {
      console.warn("zsnr preview: could not attach to node", node?.id, error);
    }
  },
});
