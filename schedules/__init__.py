"""Pure schedule math (no ComfyUI import): beta schedules, Algorithm 1, conversions, spacing."""
