"""Every generated genesys.v1 module imports, and the contract follows the conventions."""

import importlib
import pkgutil

import genesys.v1
import pytest

MODULES = sorted(m.name for m in pkgutil.iter_modules(genesys.v1.__path__))


def test_stub_modules_exist():
    assert "design_pb2" in MODULES and "scheduler_pb2_grpc" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_stub_module_imports(name):
    module = importlib.import_module(f"genesys.v1.{name}")
    assert module.__name__ == f"genesys.v1.{name}"


@pytest.mark.parametrize("name", [m for m in MODULES if m.endswith("_pb2")])
def test_enums_start_with_unspecified(name):
    module = importlib.import_module(f"genesys.v1.{name}")
    for enum in module.DESCRIPTOR.enum_types_by_name.values():
        assert enum.values_by_number[0].name.endswith("_UNSPECIFIED"), enum.full_name


@pytest.mark.parametrize("name", [m for m in MODULES if m.endswith("_pb2")])
def test_one_service_per_file_with_own_messages(name):
    module = importlib.import_module(f"genesys.v1.{name}")
    services = list(module.DESCRIPTOR.services_by_name.values())
    assert len(services) <= 1
    for service in services:
        inputs = [m.input_type.full_name for m in service.methods]
        assert len(inputs) == len(set(inputs)), f"{service.full_name} shares request messages"


def test_gau_tree_round_trips():
    from genesys.v1 import design_pb2

    tree = design_pb2.GauTree(name="gpt", root="Block", config_json='{"n_heads": 4}',
                              imports=["import torch"])
    tree.units.add(name="Block", code="class Block: ...", desc="d",
                   children=[design_pb2.UnitDecl(name="MHA", inputs=["X"], outputs=["Y"])])
    again = design_pb2.GauTree.FromString(tree.SerializeToString())
    assert again == tree and again.units[0].children[0].name == "MHA"
