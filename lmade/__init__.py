"""LMADE: the GAU protocol, designs, seeds, scales and the language model around a design."""

from genesys.design import Design, DesignFormatError, Unit, UnitDecl, load_design

from .checker import CheckReport, CheckSettings, check
from .gau import GAUBase, GAUShapeError
from .model import GenesysLM, autotune, build_lm, count_params
from .scales import LADDER, SCALES, Scale, get_scale

__all__ = [
    "LADDER",
    "SCALES",
    "CheckReport",
    "CheckSettings",
    "Design",
    "DesignFormatError",
    "GAUBase",
    "GAUShapeError",
    "GenesysLM",
    "Scale",
    "Unit",
    "UnitDecl",
    "autotune",
    "build_lm",
    "check",
    "count_params",
    "get_scale",
    "load_design",
]
