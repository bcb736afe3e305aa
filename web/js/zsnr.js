// zsnr live preview: the timesteps a spacing selects, drawn on the model's log-SNR curve inside the
// Timestep Spacing Scheduler and Schedule Plot nodes, refreshed as spacing / steps / denoise /
// steps_offset change, without queueing a prompt. The numbers come from the pack's Python
// (GET /zsnr/timesteps), never from a second implementation here. Errors stay in the widget.
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";

const PREVIEW_NODES = new Set(["TimestepSpacingScheduler", "ZSNRSchedulePlot"]);
const WATCHED_WIDGETS = ["spacing", "steps", "denoise", "steps_offset"];
const DEBOUNCE_MS = 200;
const WIDGET_HEIGHT = 140;
const COLOURS = {
  background: "#1b1d21", frame: "#555", text: "#ddd", dim: "#999", curve: "#5b9bea",
  original: "#8a8a8a", marks: "#f0902a", snrZero: "#e0434f", error: "#ff7b7b",
};

function widgetValue(node, name) {
  return node?.widgets?.find((w) => w.name === name)?.value;
}

function upstream(node, inputName) {
  try {
    const slot = node.findInputSlot?.(inputName) ?? -1;
    return slot < 0 ? null : node.getInputNode(slot);
  } catch {
    return null; // a node not (yet) in a graph
  }
}

function nodeClass(node) {
  return node?.comfyClass ?? node?.type;
}

// The sampling schedule the model input will have, read from the graph: the nearest node that
// sets it decides zsnr; the model's source decides the family. Unknown sources: SD's schedule.
function modelSchedule(node) {
  let schedule = "scaled_linear";
  let zsnr;
  let source = "assumed SD schedule";
  const seen = new Set();
  for (let current = upstream(node, "model"); current && !seen.has(current.id); current = upstream(current, "model")) {
    seen.add(current.id);
    const cls = nodeClass(current);
    if (cls === "ZeroTerminalSNR" && zsnr === undefined) zsnr = true;
    if (cls === "ModelSamplingDiscrete" && zsnr === undefined) zsnr = Boolean(widgetValue(current, "zsnr"));
    if (cls === "ZSNRReferenceModel") {
      schedule = String(widgetValue(current, "trained_schedule") ?? "scaled_linear").replace(/_zsnr$/, "");
      source = "reference model";
      break;
    }
  }
  return { schedule, zsnr: Boolean(zsnr), source };
}

// The query for this node: its own widgets, or those of the Timestep Spacing Scheduler feeding
// a plot node's `sigmas` input. Any other SIGMAS source is only known after a run.
function previewQuery(node) {
  let settings = node;
  let marksKnown = true;
  if (nodeClass(node) === "ZSNRSchedulePlot") {
    const sigmasSource = upstream(node, "sigmas");
    if (sigmasSource && nodeClass(sigmasSource) === "TimestepSpacingScheduler") settings = sigmasSource;
    else if (sigmasSource) marksKnown = false;
  }
  const model = modelSchedule(settings === node ? node : settings);
  const params = { spacing: widgetValue(settings, "spacing") ?? "trailing", steps: widgetValue(settings, "steps") ?? 20 };
  for (const name of ["denoise", "steps_offset"]) {
    const value = widgetValue(settings, name);
    if (value !== undefined) params[name] = value;
  }
  params.schedule = model.schedule;
  params.zsnr = model.zsnr;
  return { params, marksKnown, source: model.source };
}

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
  const header = state.params
    ? `log-SNR · ${state.params.spacing} · ${state.params.steps} steps · ${state.params.schedule}` +
      (state.params.zsnr ? " + zsnr" : "")
    : "";
  ctx.fillStyle = COLOURS.text;
  ctx.fillText(header, 6, 4);
  if (state.status === "error") {
    ctx.fillStyle = COLOURS.error;
    wrapText(ctx, state.error, 6, 20, width - 12, 13);
    return;
  }
  const answer = state.answer;
  if (!answer) {
    ctx.fillStyle = COLOURS.dim;
    ctx.fillText(state.status === "loading" ? "loading…" : "", 6, 20);
    return;
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
  const zeroEnd = answer.log_snr_curve[last] === null;
  if (zeroEnd) {
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
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
  }
  if (!state.marksKnown) {
    ctx.fillStyle = COLOURS.dim;
    ctx.fillText("steps: from the SIGMAS input at run time", plot.left + 4, plot.top + 3);
    return;
  }
  ctx.fillStyle = COLOURS.marks;
  answer.timesteps.forEach((t, i) => {
    const value = answer.log_snr[i];
    ctx.beginPath();
    if (value === null) {
      ctx.moveTo(x(t), plot.bottom - 1); // a step at SNR 0: a triangle on the bottom edge
      ctx.lineTo(x(t) - 5, plot.bottom - 9);
      ctx.lineTo(x(t) + 5, plot.bottom - 9);
    } else {
      ctx.arc(x(t), y(value), 3, 0, 2 * Math.PI);
    }
    ctx.fill();
  });
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
                  timesteps: [], requests: 0, key: null, canvas };
  node.zsnrPreview = state;
  let timer = null;
  let controller = null;

  const redraw = () => {
    try {
      drawPreview(canvas, state);
    } catch (error) {
      console.warn("zsnr preview: drawing failed", error);
    }
  };
  const refresh = async () => {
    timer = null;
    const { params, marksKnown, source } = previewQuery(node);
    const key = JSON.stringify(params);
    controller?.abort();
    controller = new AbortController();
    const mine = controller;
    Object.assign(state, { status: "loading", params, marksKnown, source, key, error: null });
    state.requests += 1;
    redraw();
    try {
      const answer = await fetchTimesteps(params, mine.signal);
      if (mine !== controller) return; // a newer request replaced this one
      Object.assign(state, { status: "ok", answer, timesteps: answer.timesteps, steps: answer.steps,
                             spacing: answer.spacing });
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
  state.refresh = schedule;

  const onWidgetChanged = node.onWidgetChanged;
  node.onWidgetChanged = function (name, ...rest) {
    const result = onWidgetChanged?.call(this, name, ...rest);
    if (WATCHED_WIDGETS.includes(name)) schedule();
    return result;
  };
  // Upstream edits (another model, a ZeroTerminalSNR inserted, a linked scheduler's steps) and
  // programmatic value changes do not call onWidgetChanged; the node redraws after each, so a
  // changed query is noticed there.
  const onDrawForeground = node.onDrawForeground;
  node.onDrawForeground = function (...args) {
    const result = onDrawForeground?.apply(this, args);
    try {
      if (timer === null && state.key !== JSON.stringify(previewQuery(node).params)) schedule();
    } catch (error) {
      console.warn("zsnr preview:", error);
    }
    return result;
  };
  const resizeObserver = new ResizeObserver(redraw);
  resizeObserver.observe(element);
  const onRemoved = node.onRemoved;
  node.onRemoved = function (...args) {
    if (timer !== null) clearTimeout(timer);
    controller?.abort();
    resizeObserver.disconnect();
    return onRemoved?.apply(this, args);
  };
  schedule();
}

app.registerExtension({
  name: "zsnr.livePreview",
  nodeCreated(node) {
    if (!PREVIEW_NODES.has(nodeClass(node))) return;
    try {
      attachPreview(node);
    } catch (error) {
      console.warn("zsnr preview: could not attach to node", node?.id, error);
    }
  },
});
