"""medsr: restoration (super-resolution and denoising) of medical images.

Outputs are for research use only, not for diagnosis.
"""

from medsr._version import __version__
from medsr.image import Volume, Window

__all__ = ["Volume", "Window", "__version__"]
