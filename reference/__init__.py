"""Pure reference model (no ComfyUI import): built-in datasets and the exact posterior-mean denoiser."""
