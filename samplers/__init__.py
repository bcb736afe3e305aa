"""Pure sampler math (no ComfyUI import): prediction conversions and the exact first step at SNR 0."""
