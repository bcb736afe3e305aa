// zsnr live preview: the timesteps a spacing selects, drawn on the model's log-SNR curve inside the
// Timestep Spacing Scheduler and Schedule Plot nodes, refreshed as spacing / steps / denoise /
// steps_offset or the model chain change, without queueing a prompt. The numbers come from the
// pack's Python (GET /zsnr/timesteps), never from a second implementation here. Errors stay in the
// widget. Help: web/docs/TimestepSpacingScheduler.md, web/docs/ZSNRSchedulePlot.md.
//
// Both frontend renderers: the classic LiteGraph canvas and "Nodes 2.0" (setting
// Comfy.VueNodes.Enabled). The preview is a DOM widget (node.addDOMWidget, a <canvas>), which both
// show; changes are noticed through each widget's own `callback` (both renderers call it; the Vue
// one never calls node.onWidgetChanged nor onDrawForeground), every node's onConnectionsChange
// (links), the `mode` setter of the nodes that set the terminal (bypass), the frontend's
// `graphChanged` event (undo, loading) and, on the classic canvas, the node's redraw.
//
// Longer than 250 lines: the graph walk, the drawing and the hooks share one state object and are
// kept in one module (the frontend also loads every other .js file under web/js as an extension).
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";

const PREVIEW_NODES = new Set(["TimestepSpacingScheduler", "ZSNRSchedulePlot"]);
const WATCHED_WIDGETS = ["spacing", "steps", "denoise", "steps_offset"];
// Widgets of other nodes a preview reads (modelSchedule, previewQuery): a change re-checks every preview.
const UPSTREAM_WIDGETS = {
  ZeroTerminalSNR: ["terminal"], ModelSamplingDiscrete: ["zsnr"], ZSNRReferenceModel: ["trained_schedule"],
  TimestepSpacingScheduler: WATCHED_WIDGETS,
};
// the nodes that set a model's terminal (modelSchedule); bypassing one changes it
const TERMINAL_NODES = new Set(["ZeroTerminalSNR", "ModelSamplingDiscrete"]);
// litegraph's constants.ts: links from a subgraph's input node have this origin id
const SUBGRAPH_INPUT_ID = "-10";
const BYPASS = 4; // LGraphEventMode.BYPASS: the node passes its inputs through unchanged
const DEBOUNCE_MS = 200;
const WIDGET_HEIGHT = 140;
const COLOURS = {
  background: "#1b1d21", frame: "#555", text: "#ddd", dim: "#999", curve: "#5b9bea",
  original: "#8a8a8a", marks: "#f0902a", snrZero: "#e0434f", error: "#ff7b7b",
};
const previews = new Set(); // the state of every attached preview, for upstream changes

function widgetValue(node, name) {
  return node?.widgets?.find((w) => w.name === name)?.value;
}

function nodeClass(node) {
  return node?.comfyClass ?? node?.type;
}

// The subgraph nodes (outermost first) whose inner graphs lead from the root graph to `graph`.
// A subgraph used by several nodes is read through the first one found.
function subgraphPath(graph, within = app.graph, path = []) {
  if (!graph || graph === within) return path;
  for (const node of within?._nodes ?? within?.nodes ?? []) {
    if (!node.isSubgraphNode?.() || !node.subgraph) continue;
    const found = subgraphPath(graph, node.subgraph, [...path, node]);
    if (found) return found;
  }
  return within === app.graph ? [] : null;
}

// The node feeding `node`'s input (name or index), followed across subgraph boundaries: out of a
// subgraph through its input node to the subgraph node's input outside, into one through the
// subgraph node's output to the link inside. `path` says which subgraph nodes hold `node`.
function sourceOf(node, input, path) {
  const slot = typeof input === "number" ? input : node?.findInputSlot?.(input) ?? -1;
  let graph = node?.graph;
  let linkId = slot < 0 ? null : node.inputs?.[slot]?.link;
  for (let hop = 0; hop < 64 && graph && linkId != null; hop++) {
    const link = graph.getLink?.(linkId) ?? graph._links?.get?.(linkId) ?? graph.links?.[linkId];
    if (!link) return null;
    if (link.originIsIoNode ?? String(link.origin_id) === SUBGRAPH_INPUT_ID) {
      const outer = path.at(-1);
      if (!outer) return null;
      [graph, path, linkId] = [outer.graph, path.slice(0, -1), outer.inputs?.[link.origin_slot]?.link];
      continue;
    }
    const origin = graph.getNodeById(link.origin_id);
    if (origin?.isSubgraphNode?.() && origin.subgraph) {
      const inner = origin.subgraph.outputNode?.slots?.[link.origin_slot];
      [graph, path, linkId] = [origin.subgraph, [...path, origin], inner?.linkIds?.[0]];
      continue;
    }
    return origin ? { node: origin, path } : null;
  }
  return null;
}

// The model input a node passes on: `model`, or a reroute's only input.
function modelInput(node) {
  const slot = node.findInputSlot?.("model") ?? -1;
  return slot >= 0 ? slot : node.inputs?.length === 1 && nodeClass(node) === "Reroute" ? 0 : -1;
}

// The sampling schedule the model input will have, read from the graph: the nearest node that
// sets the terminal decides it (ModelSamplingDiscrete replaces the sampling object, ZeroTerminalSNR
// rescales; bypassed nodes pass the model on unchanged); the model's source decides the family.
// ModelSamplingDiscrete's zsnr option is the host's clamp (alphā_T = 4.9e-8), i.e. clamp_comfy.
function modelSchedule(node, path) {
  let schedule = "scaled_linear";
  let terminal;
  let source = "assumed SD schedule";
  const seen = new Set();
  for (let at = sourceOf(node, "model", path); at && !seen.has(at.node);) {
    const current = at.node;
    seen.add(current);
    const cls = nodeClass(current);
    if (current.mode !== BYPASS && terminal === undefined) {
      if (cls === "ZeroTerminalSNR") terminal = String(widgetValue(current, "terminal") ?? "exact");
      if (cls === "ModelSamplingDiscrete") terminal = widgetValue(current, "zsnr") ? "clamp_comfy" : "none";
    }
    if (cls === "ZSNRReferenceModel") {
      schedule = String(widgetValue(current, "trained_schedule") ?? "scaled_linear").replace(/_zsnr$/, "");
      source = "reference model";
      break;
    }
    const next = modelInput(current);
    at = next < 0 ? null : sourceOf(current, next, at.path);
  }
  return { schedule, terminal: terminal ?? "none", source };
}

// The query for this node: its own widgets, or those of the Timestep Spacing Scheduler feeding
// a plot node's `sigmas` input. Any other SIGMAS source is only known after a run.
function previewQuery(node) {
  let settings = { node, path: subgraphPath(node.graph) };
  let marksKnown = true;
  if (nodeClass(node) === "ZSNRSchedulePlot") {
    const sigmasSource = sourceOf(node, "sigmas", settings.path);
    if (sigmasSource && nodeClass(sigmasSource.node) === "TimestepSpacingScheduler") settings = sigmasSource;
    else if (sigmasSource) marksKnown = false;
  }
  const model = modelSchedule(settings.node, settings.path);
  const source = settings.node;
  const params = { spacing: widgetValue(source, "spacing") ?? "trailing", steps: widgetValue(source, "steps") ?? 20 };
  for (const name of ["denoise", "steps_offset"]) {
    const value = widgetValue(source, name);
    if (value !== undefined) params[name] = value;
  }
  params.schedule = model.schedule;
  params.terminal = model.terminal;
  return { params, marksKnown, source: model.source };
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
  const p = state.params;
  const header = p ? `log-SNR · ${p.spacing} · ${p.steps} steps · ${p.schedule}` : "";
  const drawn = { width, height, header, status: state.status, marks: [], snrZeroMarks: 0, snrZeroArrow: false, topLogSnr: null };
  ctx.fillStyle = COLOURS.text;
  ctx.fillText(header, 6, 4);
  if (state.status === "error") {
    ctx.fillStyle = COLOURS.error;
    wrapText(ctx, state.error, 6, 20, width - 12, 13);
    return drawn;
  }
  const answer = state.answer;
  if (!answer) {
    ctx.fillStyle = COLOURS.dim;
    ctx.fillText(state.status === "loading" ? "loading…" : "", 6, 20);
    return drawn;
  }
  const plot = { left: 26, top: 20, right: width - 8, bottom: height - 16 };
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

function wrapText(ctx, text, left, top, width, lineHeight) {
  let line = "";
  for (const word of String(text).split(" ")) {
    const candidate = line ? `${line} ${word}` : word;
    if (ctx.measureText(candidate).width > width && line) {
      ctx.fillText(line, left, top);
      top += lineHeight;
      line = word;
    } else {
      line = candidate;
    }
  }
  ctx.fillText(line, left, top);
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

// A bypass (Ctrl+B, the selection toolbox) only sets node.mode. The frontend makes `mode` an accessor
// of each node (litegraph's LGraphNodeProperties, which tells Nodes 2.0); its setter is chained here
// so the previews re-check; where there is none, the classic canvas's redraw notices the change.
function hookMode(node, onChange) {
  const descriptor = Object.getOwnPropertyDescriptor(node, "mode");
  if (!descriptor?.set || !descriptor.configurable) return;
  Object.defineProperty(node, "mode", {
    ...descriptor,
    set(value) {
      descriptor.set.call(this, value);
      onChange();
    },
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
                  timesteps: [], requests: 0, draws: 0, drawn: null, key: null, canvas, node };
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
    const { params, marksKnown, source } = previewQuery(node);
    controller?.abort();
    controller = new AbortController();
    const mine = controller;
    Object.assign(state, { status: "loading", params, marksKnown, source, key: JSON.stringify(params), error: null });
    state.requests += 1;
    redraw();
    try {
      const answer = await fetchTimesteps(params, mine.signal);
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
      if (timer === null && state.key !== JSON.stringify(previewQuery(node).params)) schedule();
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
      if (UPSTREAM_WIDGETS[cls] && !PREVIEW_NODES.has(cls)) {
        hookWidgets(node, UPSTREAM_WIDGETS[cls], () => setTimeout(recheckPreviews, 0));
      }
      if (TERMINAL_NODES.has(cls)) hookMode(node, () => setTimeout(recheckPreviews, 0));
      if (PREVIEW_NODES.has(cls)) attachPreview(node);
    } catch (error) {
      console.warn("zsnr preview: could not attach to node", node?.id, error);
    }
  },
});
