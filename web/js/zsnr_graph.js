// zsnr live preview, the graph side: what GET /zsnr/timesteps is asked for a preview node, read from
// the graph the server will run (the model chain's schedule and terminal, the size of the latent the
// Timestep Spacing Scheduler spaces for). zsnr.js draws the answer and hooks the nodes.
//
// Why a module of its own: reading the graph needs nothing of a preview's state, and with the latent
// size (issue #15) it had outgrown a shared file. The frontend imports every .js file under web/js
// as an extension (WEB_DIRECTORY in __init__.py, listed by GET /extensions), this one too: it
// registers nothing, and zsnr.js imports it by the same URL, so both share one module instance.
import { app } from "../../../scripts/app.js";

export const PREVIEW_NODES = new Set(["TimestepSpacingScheduler", "ZSNRSchedulePlot"]);
export const WATCHED_WIDGETS = ["spacing", "steps", "denoise", "steps_offset"];
// the pixel size of a node that makes a latent (EmptyLatentImage, ZSNRSamplingResolution, …)
export const SIZE_WIDGETS = ["width", "height"];
// the widget of the node feeding a size widget turned into an input (PrimitiveNode, PrimitiveInt)
export const SIZE_SOURCE_WIDGET = "value";
// Widgets of other nodes a preview reads (modelSchedule, previewQuery): a change re-checks every
// preview. Besides these, any node with SIZE_WIDGETS (hasSizeWidgets).
export const UPSTREAM_WIDGETS = {
  ZeroTerminalSNR: ["terminal"], ModelSamplingDiscrete: ["zsnr"], ZSNRReferenceModel: ["trained_schedule"],
  TimestepSpacingScheduler: WATCHED_WIDGETS,
};
// the node that records a latent size on the model (nodes/sampling_resolution.py)
const RESOLUTION_NODE = "ZSNRSamplingResolution";
// the nodes whose bypass changes what a model chain gives a preview: those that set the terminal
// (modelSchedule) and the one that records a size; nodes with SIZE_WIDGETS are watched too
export const MODE_NODES = new Set(["ZeroTerminalSNR", "ModelSamplingDiscrete", RESOLUTION_NODE]);
// Pixels per latent position: the SD-family VAE's 8 (upstream nodes.py, EmptyLatentImage: height // 8,
// width // 8; the same in EmptySD3LatentImage and ZSNRSamplingResolution), except where the latent
// is the image itself (upstream comfy_extras/nodes_chroma_radiance.py, the pack's reference models'
// pixel space). logsnr_resolution is a spacing for the SD family's schedule
// (schedules/logsnr_spacing.py), so the factors of other families' VAEs are not listed.
const VAE_FACTOR = 8;
const PIXELS_PER_POSITION = { EmptyChromaRadianceLatentImage: 1 };
// litegraph's constants.ts: links from a subgraph's input node have this origin id
const SUBGRAPH_INPUT_ID = "-10";
const BYPASS = 4; // LGraphEventMode.BYPASS: the node passes its inputs through unchanged

function widgetValue(node, name) {
  return node?.widgets?.find((w) => w.name === name)?.value;
}

export function nodeClass(node) {
  return node?.comfyClass ?? node?.type;
}

export function hasSizeWidgets(node) {
  return SIZE_WIDGETS.every((name) => node?.widgets?.some((w) => w.name === name));
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

function isLinked(node, input) {
  const slot = node?.findInputSlot?.(input) ?? -1;
  return slot >= 0 && node.inputs[slot].link != null;
}

// The input a node passes on as its output of `type`: a reroute's only input, or a bypassed node's
// first input of that type (what the executor passes through a bypass); -1 for any other node.
function passedOn(node, type) {
  if (node.inputs?.length === 1 && nodeClass(node) === "Reroute") return 0;
  if (node.mode !== BYPASS) return -1;
  return node.inputs?.findIndex((input) => input.type === type) ?? -1;
}

// The model input a node passes on: `model`, or a reroute's only input.
function modelInput(node) {
  const slot = node.findInputSlot?.("model") ?? -1;
  return slot >= 0 ? slot : node.inputs?.length === 1 && nodeClass(node) === "Reroute" ? 0 : -1;
}

// A size widget's number: its own value, or, when the widget is turned into a linked input, the
// `value` widget of the node feeding it (PrimitiveNode, PrimitiveInt); NaN when neither is known.
function sizeInPixels(node, name, path) {
  const value = isLinked(node, name) ? widgetValue(sourceOf(node, name, path)?.node, SIZE_SOURCE_WIDGET) : widgetValue(node, name);
  return typeof value === "number" ? value : NaN;
}

// [height, width] in latent positions of the latent a node makes from a size in pixels (its batch
// size or length does not matter), or null when that is not known before a run (e.g. LatentUpscale
// with width 0 keeps its input's aspect ratio: upstream nodes.py).
function latentOfPixelSize(node, path) {
  const factor = PIXELS_PER_POSITION[nodeClass(node)] ?? VAE_FACTOR;
  const [height, width] = ["height", "width"].map((name) => Math.floor(sizeInPixels(node, name, path) / factor));
  return height >= 1 && width >= 1 ? [height, width] : null; // NaN fails too
}

// What TimestepSpacingScheduler's `latent` input carries (nodes/schedulers.py, latent_size): the
// latent of the node it is linked to, through subgraphs (sourceOf), reroutes and bypassed nodes.
// null when unlinked; { size: null } when linked to a latent whose size is known only at run time
// (VAEEncode of an image, LatentUpscaleBy, …).
function linkedLatent(node, path) {
  const seen = new Set();
  let at = sourceOf(node, "latent", path);
  if (!at) return null;
  while (at && !seen.has(at.node)) {
    const current = at.node;
    seen.add(current);
    const next = passedOn(current, "LATENT");
    if (next < 0) {
      return { size: hasSizeWidgets(current) ? latentOfPixelSize(current, at.path) : null, from: nodeClass(current) };
    }
    at = sourceOf(current, next, at.path);
  }
  return { size: null, from: null };
}

// The sampling schedule the model input will have, read from the graph: the nearest node that
// sets the terminal decides it (ModelSamplingDiscrete replaces the sampling object, ZeroTerminalSNR
// rescales; bypassed nodes pass the model on unchanged); the model's source decides the family.
// ModelSamplingDiscrete's zsnr option is the host's clamp (alphā_T = 4.9e-8), i.e. clamp_comfy.
// `recorded` is the latent size the nearest ZSNRSamplingResolution records on the model (null where
// a host ModelSampling* node after it replaces the sampling object and drops it:
// nodes/sampling_resolution.py; ZeroTerminalSNR and VPredictionAdapter keep it).
function modelSchedule(node, path) {
  let schedule = "scaled_linear";
  let terminal;
  let recorded;
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
    if (current.mode !== BYPASS && recorded === undefined) {
      if (cls === RESOLUTION_NODE) recorded = { size: latentOfPixelSize(current, at.path), from: cls };
      else if (cls?.startsWith("ModelSampling")) recorded = null;
    }
    if (cls === "ZSNRReferenceModel") {
      schedule = String(widgetValue(current, "trained_schedule") ?? "scaled_linear").replace(/_zsnr$/, "");
      source = "reference model";
      break;
    }
    const next = modelInput(current);
    at = next < 0 ? null : sourceOf(current, next, at.path);
  }
  return { schedule, terminal: terminal ?? "none", source, recorded: recorded ?? null };
}

// The query for this node: its own widgets, or those of the Timestep Spacing Scheduler feeding
// a plot node's `sigmas` input. Any other SIGMAS source is only known after a run. The latent size
// is the scheduler's, as nodes/schedulers.py takes it: the `latent` input when linked, else the
// size recorded on the model, else none (the 64x64 reference); a plot node's own spacing reads the
// recorded size only (nodes/schedule_plot.py). `latentUnknown`: linked to a latent sized only at run time.
export function previewQuery(node) {
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
  const scheduler = nodeClass(source) === "TimestepSpacingScheduler";
  const latent = scheduler ? linkedLatent(source, settings.path) ?? model.recorded : model.recorded;
  if (latent?.size) [params.latent_height, params.latent_width] = latent.size;
  return { params, marksKnown, source: model.source, latentUnknown: Boolean(latent && !latent.size) };
}
