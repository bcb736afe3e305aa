"""The example workflow of docs/detection.md §5 (issue #25), for tools/example_graphs.py to import:
detect what a checkpoint predicts and how it was trained, then save it with those settings.

Register it in tools/example_graphs.py with
    from detection_graphs import DETECT_AND_SAVE, DETECT_AND_SAVE_LABELS, DETECT_AND_SAVE_NOTE, detect_and_save_graph
    EXAMPLES[DETECT_AND_SAVE] = (detect_and_save_graph(), DETECT_AND_SAVE_LABELS)
    NOTES[DETECT_AND_SAVE] = DETECT_AND_SAVE_NOTE
    NEEDS_USER_FILES[DETECT_AND_SAVE] = "needs your own checkpoint in models/checkpoints"
"""
from __future__ import annotations

DETECT_AND_SAVE = "Detect prediction type and terminal SNR, then save"


def detect_and_save_graph(ckpt_name: str = "your_checkpoint.safetensors", size: int = 1024) -> dict:
    """Load Checkpoint → V-Prediction Adapter (auto) → Zero Terminal SNR (auto) → KSampler (one image:
    the sampling runs the detection) → VAE Decode → Save Image; Checkpoint Save on the patched model.
    The host's saver writes v_pred only for a file it loaded as v (docs/detection.md §5), so the
    note says to set the two nodes to the detected values before the saving run."""
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt_name}},
        "2": {"class_type": "VPredictionAdapter", "inputs": {"model": ["1", 0], "prediction": "auto"}},
        "3": {"class_type": "ZeroTerminalSNR", "inputs": {"model": ["2", 0], "terminal": "auto"}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "a photograph", "clip": ["1", 1]}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "6": {"class_type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": 1}},
        "7": {"class_type": "KSampler", "inputs": {
            "model": ["3", 0], "seed": 0, "steps": 20, "cfg": 5.0, "sampler_name": "euler",
            "scheduler": "trailing", "positive": ["4", 0], "negative": ["5", 0], "latent_image": ["6", 0],
            "denoise": 1.0}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["7", 0], "vae": ["1", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "zsnr/detected"}},
        "10": {"class_type": "CheckpointSave", "inputs": {
            "model": ["3", 0], "clip": ["1", 1], "vae": ["1", 2], "filename_prefix": "checkpoints/zsnr_repaired"}},
    }


DETECT_AND_SAVE_LABELS = {
    "1": "Your checkpoint (its v_pred / ztsnr keys lost?)",
    "2": "prediction = auto: decided from the network",
    "3": "terminal = auto: exact if trained for SNR 0, else unchanged",
    "7": "This sampling runs the detection (see the log and nodes 2 and 3)",
    "10": "Saves the patched model (docs/detection.md §5: what the host writes)",
}

DETECT_AND_SAVE_NOTE = (
    "Needs your own checkpoint. Run once: the KSampler's sampling decides what the checkpoint predicts and "
    "whether it was trained with zero terminal SNR; the verdicts are in the log, and on nodes 2 and 3 when they "
    "contradict the file's keys. Before saving, set node 2 to the detected prediction and node 3 to exact (or "
    "bypass it when 'unchanged'), then run again: ComfyUI's Checkpoint Save writes ztsnr from the patched model, "
    "but v_pred only for a file it loaded as v; a file that lost v_pred needs the two keys added outside "
    "ComfyUI (docs/detection.md, section 5). Change: the prompt, the size.")
