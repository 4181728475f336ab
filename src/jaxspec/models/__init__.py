"""Binary (and single-star) models built from any spectral model, and parameter specifications."""

from jaxspec.models.binary import BinaryModel
from jaxspec.models.params import Param, ParamSpec

__all__ = ["BinaryModel", "Param", "ParamSpec"]
