"""zsnr: zero terminal SNR sampling for ComfyUI (Lin et al. 2023). Registration only."""
from comfy_api.latest import ComfyExtension, io

from .nodes import NODES
from .nodes.routes import register_routes
from .nodes.schedulers import register_host_schedulers

WEB_DIRECTORY = "./web"


class ZSNRExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODES)


async def comfy_entrypoint() -> ZSNRExtension:
    register_host_schedulers()
    register_routes()
    return ZSNRExtension()
