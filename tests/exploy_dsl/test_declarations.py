"""Declarations: names, duplicates, dtypes, shapes, rates, memory init, metadata, groups."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from exploy_dsl import DeclarationError, Input, Memory, Output, Program


def make(**kwargs: object) -> Program:
    options: dict[str, object] = {"decimation": 4, "sim_dt": 0.005}
    options.update(kwargs)
    return Program("p", **options)  # type: ignore[arg-type]


# -- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["foo", "obj.robot.joints.pos", "cmd.se2_velocity.base_velocity", "A_1.b2.C_3", "_"]
)
def test_dotted_names_of_letters_digits_and_underscores_are_accepted(name: str) -> None:
    program = make()
    port = program.input(name, 3)
    assert port.name == name
    assert program.port(name) is port


@pytest.mark.parametrize(
    ("name", "bad_segment"),
    [
        ("", ""),
        ("a..b", ""),
        (".a", ""),
        ("a.", ""),
        ("joint pos", "joint pos"),
        ("obj.robot-1.pos", "robot-1"),
        ("obj/robot", "obj/robot"),
        ("gelenk.wärme", "wärme"),
    ],
)
def test_invalid_names_are_rejected_naming_the_segment(name: str, bad_segment: str) -> None:
    with pytest.raises(DeclarationError, match=rf"input .* is not valid: segment '{bad_segment}'"):
        make().input(name, 3)


@pytest.mark.parametrize("kind", ["input", "output", "memory"])
def test_a_name_ending_in_a_newline_is_rejected(kind: str) -> None:
    # A regex ending in $ also matches before a final newline; exploy's matchers do not.
    with pytest.raises(DeclarationError, match=r"name 'x\\n' is not valid: segment 'x\\n'"):
        getattr(make(), kind)("x\n", 3)


def test_a_non_str_name_is_rejected() -> None:
    with pytest.raises(DeclarationError, match=r"output .*name must be a str, got int 12"):
        make().output(12, 3)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["input", "output"])
@pytest.mark.parametrize("name", ["actions", "obs"])
def test_actions_and_obs_are_reserved_for_inputs_and_outputs(kind: str, name: str) -> None:
    with pytest.raises(DeclarationError, match=rf"{kind} name '{name}' is reserved"):
        getattr(make(), kind)(name, 2)


@pytest.mark.parametrize("kind", ["input", "output"])
@pytest.mark.parametrize("name", ["ctx.step_count", "ctx.other", "memory.actions", "memory.x.in"])
def test_ctx_and_memory_prefixes_are_reserved_for_inputs_and_outputs(kind: str, name: str) -> None:
    prefix = name.split(".")[0]
    with pytest.raises(DeclarationError, match=rf"{kind} name '{name}' is reserved.*'{prefix}\.'"):
        getattr(make(), kind)(name, 2)


def test_a_memory_may_be_named_actions() -> None:
    memory = make().memory("actions", 12)
    assert isinstance(memory, Memory)
    assert (memory.wire_in, memory.wire_out) == ("memory.actions.in", "memory.actions.out")


def test_program_name_is_checked() -> None:
    with pytest.raises(DeclarationError, match=r"program name 'my policy' is not valid"):
        Program("my policy", decimation=4, sim_dt=0.005)


# -- duplicates ---------------------------------------------------------------------------------


@pytest.mark.parametrize("second", ["input", "output", "memory"])
def test_a_port_name_declared_twice_is_rejected(second: str) -> None:
    program = make()
    program.input("foo", 2)
    with pytest.raises(DeclarationError, match=rf"{second} 'foo' is declared twice.*Input\('foo'"):
        getattr(program, second)("foo", 2)


def test_a_group_with_the_name_of_a_port_is_rejected() -> None:
    program = make()
    program.output("targets", 2)
    with pytest.raises(DeclarationError, match=r"group 'targets' is declared twice"):
        program.group("targets")


def test_a_port_with_the_name_of_a_group_is_rejected() -> None:
    program = make()
    program.group("obj.robot.joints")
    with pytest.raises(DeclarationError, match=r"input 'obj.robot.joints' is declared twice"):
        program.input("obj.robot.joints", 12)


def test_a_group_declared_twice_is_rejected() -> None:
    program = make()
    program.group("g")
    with pytest.raises(DeclarationError, match=r"group 'g' is declared twice"):
        program.group("g")


def test_a_port_name_that_is_a_dot_prefix_of_another_is_rejected() -> None:
    program = make()
    program.input("a.b", 2)
    with pytest.raises(DeclarationError, match=r"input 'a' clashes with Input\('a.b'"):
        program.input("a", 2)
    with pytest.raises(DeclarationError, match=r"output 'a.b.c' clashes with Input\('a.b'"):
        program.output("a.b.c", 2)


def test_a_port_named_like_a_top_level_metadata_key_is_rejected() -> None:
    with pytest.raises(DeclarationError, match=r"'update_rate' is a top level metadata key"):
        make().input("update_rate", 1)


# -- dtypes -------------------------------------------------------------------------------------


def test_dtype_defaults_to_float32() -> None:
    program = make()
    port = program.input("x", 3)
    assert port.dtype == "float32"
    assert port.np_dtype == np.float32
    assert program.memory("m", 3).init.dtype == np.float32


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        ("int32", "int32"),
        (np.int32, "int32"),
        ("bool", "bool"),
        (np.bool_, "bool"),
        ("float32", "float32"),
        (np.dtype(np.float32), "float32"),
    ],
)
def test_int32_and_bool_are_accepted_in_any_spelling(dtype: object, expected: str) -> None:
    program = make()
    assert program.input("i", 2, dtype=dtype).dtype == expected
    assert program.output("o", 2, dtype=dtype).dtype == expected
    assert program.memory("m", 2, dtype=dtype).init.dtype == np.dtype(expected)


@pytest.mark.parametrize("dtype", ["float64", np.float64, "int64", np.int64, str, "str", "float16"])
@pytest.mark.parametrize("kind", ["input", "output", "memory"])
def test_other_dtypes_are_rejected_naming_the_port(kind: str, dtype: object) -> None:
    with pytest.raises(
        DeclarationError,
        match=rf"{kind} 'obj.robot.joints.pos' has unsupported dtype .*only float32, int32 and",
    ):
        getattr(make(), kind)("obj.robot.joints.pos", 12, dtype=dtype)


def test_a_nonsense_dtype_is_rejected_naming_the_port() -> None:
    with pytest.raises(DeclarationError, match=r"input 'x' has unsupported dtype 'banana'"):
        make().input("x", 2, dtype="banana")


# -- shapes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "per_sample"),
    [(3, (3,)), ((12,), (12,)), ([2, 3], (2, 3)), (np.int64(4), (4,)), ((1,), (1,))],
)
def test_shapes_are_per_sample_and_the_file_adds_batch_one(
    shape: object, per_sample: tuple[int, ...]
) -> None:
    port = make().input("x", shape)  # type: ignore[arg-type]
    assert port.shape == per_sample
    assert port.file_shape == (1, *per_sample)


def test_the_batch_dimension_is_the_programs() -> None:
    program = make(batch=3)
    assert program.output("y", 2).file_shape == (3, 2)
    assert program.memory("m", 2, init=[1.0, 2.0]).init.shape == (3, 2)


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        (0, r"every dimension must be a static int >= 1 \(got 0\)"),
        (-1, r"every dimension must be a static int >= 1 \(got -1\)"),
        ((3, 0), r"got 0"),
        ((2.5,), r"got 2.5"),
        ((3, None), r"got None"),
        ((True,), r"got True"),
        ((), r"empty shape"),
        ("3", r"expected an int or a tuple of ints"),
        (3.0, r"expected an int or a tuple of ints"),
        (None, r"expected an int or a tuple of ints"),
        # Larger than a file can hold: the trace then failed allocating (a MemoryError).
        ((10**5, 10**5), r"10000000000 elements, more than the 536870912 \(2 GiB of float32\)"),
    ],
)
def test_bad_shapes_are_rejected_naming_the_port(shape: object, match: str) -> None:
    with pytest.raises(DeclarationError, match=rf"input 'x' .*{match}"):
        make().input("x", shape)  # type: ignore[arg-type]


def test_a_memory_too_large_for_a_file_is_rejected_before_its_init_is_allocated() -> None:
    with pytest.raises(DeclarationError, match=r"memory 'm' .* 1073741824 elements, more than"):
        make().memory("m", (2, 2**29))


# -- rates --------------------------------------------------------------------------------------


@pytest.mark.parametrize("decimation", [0, -1, -4])
def test_decimation_below_one_is_rejected(decimation: int) -> None:
    with pytest.raises(
        DeclarationError, match=rf"decimation must be an int >= 1.*got {decimation}"
    ):
        make(decimation=decimation)


@pytest.mark.parametrize("decimation", [2.0, True, "4", None])
def test_decimation_must_be_an_int(decimation: object) -> None:
    with pytest.raises(DeclarationError, match=r"decimation must be an int >= 1"):
        make(decimation=decimation)


@pytest.mark.parametrize("sim_dt", [0, 0.0, -0.005, -1, math.nan, math.inf, True, "0.005"])
def test_sim_dt_must_be_a_finite_positive_number(sim_dt: object) -> None:
    with pytest.raises(DeclarationError, match=r"sim_dt must be a finite number > 0.*got "):
        make(sim_dt=sim_dt)


def test_rates_are_kept() -> None:
    program = make(decimation=1, sim_dt=0.02)
    assert (program.decimation, program.sim_dt, program.update_rate) == (1, 0.02, 50.0)


# -- memory initial values ----------------------------------------------------------------------


def test_memory_starts_at_zeros_by_default() -> None:
    memory = make().memory("m", 3)
    np.testing.assert_array_equal(memory.init, np.zeros((1, 3), np.float32))


@pytest.mark.parametrize(
    "init", [[0.1, 0.2, 0.3], np.array([[0.1, 0.2, 0.3]]), (0.1, 0.2, 0.3)], ids=str
)
def test_memory_init_is_given_per_sample_or_with_the_batch(init: object) -> None:
    memory = make().memory("m", 3, init=init)
    assert memory.init.shape == (1, 3)
    assert memory.init.dtype == np.float32
    np.testing.assert_array_equal(memory.init, np.float32([[0.1, 0.2, 0.3]]))


def test_a_single_number_is_broadcast() -> None:
    np.testing.assert_array_equal(
        make().memory("m", (2, 2), init=1.5).init, np.full((1, 2, 2), 1.5)
    )


def test_memory_init_is_a_read_only_copy() -> None:
    source = np.array([1.0, 2.0], np.float32)
    memory = make().memory("m", 2, init=source)
    source[0] = 99.0
    assert memory.init[0, 0] == 1.0
    with pytest.raises(ValueError, match="read-only"):
        memory.init[0, 0] = 5.0


@pytest.mark.parametrize(
    ("init", "got"),
    [([1.0, 2.0, 3.0], r"\[3\]"), (np.zeros((2, 2)), r"\[2, 2\]"), ([[1.0], [2.0]], r"\[2, 1\]")],
)
def test_memory_init_of_the_wrong_shape_is_rejected(init: object, got: str) -> None:
    with pytest.raises(
        DeclarationError,
        match=rf"memory 'last' initial value has shape {got}; expected \[2\] \(or \[1, 2\]",
    ):
        make().memory("last", 2, init=init)


def test_memory_init_must_be_finite() -> None:
    with pytest.raises(DeclarationError, match=r"memory 'm' initial value holds NaN or infinity"):
        make().memory("m", 2, init=[0.0, math.nan])


def test_a_float_init_beyond_float32_is_refused_without_numpy_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow warning printed a second stderr line
        with pytest.raises(DeclarationError, match=r"holds NaN or infinity \(or a number beyond"):
            make().memory("m", 2, init=[1e39, 0.0])


@pytest.mark.parametrize(
    ("init", "shown"),
    [(3e9, "3e\\+09"), (2**40, "1.09951e\\+12"), (-(2**31) - 1, "-2.14748e\\+09")],
)
def test_an_int32_init_out_of_range_is_refused_not_wrapped(init: float, shown: str) -> None:
    # 2**40 became 0 and 3e9 became -2147483648: a silently different initial value.
    with pytest.raises(DeclarationError, match=rf"holds {shown}, outside int32 \[-2147483648, "):
        make().memory("count", 1, dtype="int32", init=init)
    edge = make().memory("count", 2, dtype="int32", init=[2**31 - 1, -(2**31)]).init
    assert edge.tolist() == [[2**31 - 1, -(2**31)]]


def test_memory_init_must_be_numbers() -> None:
    with pytest.raises(DeclarationError, match=r"memory 'm' initial value has dtype <U1"):
        make().memory("m", 2, init=["a", "b"])


def test_an_int32_memory_refuses_fractional_initial_values() -> None:
    with pytest.raises(DeclarationError, match=r"memory 'count' initial value has fractional"):
        make().memory("count", 1, dtype="int32", init=0.5)
    assert make().memory("count", 1, dtype="int32", init=3.0).init.dtype == np.int32


# -- metadata -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "match"),
    [
        ({"names": np.array([1.0, 2.0])}, r"ndarray is not JSON serializable"),
        ({"gain": np.float32(2.0)}, r"float32 is not JSON serializable"),
        ({"f": object()}, r"object is not JSON serializable"),
        ({"limit": math.inf}, r"Out of range float values"),
        ({"limit": math.nan}, r"Out of range float values"),
    ],
)
def test_metadata_that_is_not_json_is_rejected_naming_the_port(
    metadata: dict[str, object], match: str
) -> None:
    with pytest.raises(
        DeclarationError, match=rf"input 'x' metadata cannot be stored as JSON: .*{match}.*tolist"
    ):
        make().input("x", 2, metadata=metadata)


def test_metadata_must_be_a_dict() -> None:
    with pytest.raises(DeclarationError, match=r"output 'y' metadata must be a dict, got list"):
        make().output("y", 2, metadata=["description"])  # type: ignore[arg-type]


def test_group_metadata_is_checked_too() -> None:
    with pytest.raises(DeclarationError, match=r"group 'g' metadata cannot be stored as JSON"):
        make().group("g", metadata={"k": {1, 2}})


def test_metadata_is_a_private_copy() -> None:
    metadata = {"ranges": {"lin_vel_x": [-1.0, 1.0]}}
    port = make().input("cmd", 3, metadata=metadata)
    metadata["ranges"]["lin_vel_x"][0] = -5.0
    assert port.metadata == {"ranges": {"lin_vel_x": [-1.0, 1.0]}}


@pytest.mark.parametrize("key", ["update_rate", "decimation", "exploy_version", "exploy_dsl.x"])
def test_program_metadata_may_not_use_the_compilers_keys(key: str) -> None:
    with pytest.raises(DeclarationError, match=rf"metadata key '{key}' is written by the compiler"):
        make(metadata={key: "1"})


def test_a_port_may_not_collide_with_program_metadata() -> None:
    program = make(metadata={"env_name": "Env"})
    with pytest.raises(DeclarationError, match=r"collides with program metadata key 'env_name'"):
        program.input("env_name", 1)


# -- groups -------------------------------------------------------------------------------------


def test_group_members_are_named_group_dot_member() -> None:
    program = make()
    joints = program.group("obj.robot.joints", metadata={"joint_names": ["a", "b"]})
    pos = joints.input("pos", 2)
    vel = joints.input("vel", 2)
    target = joints.output("target", 2)
    state = joints.memory("state", 2, init=[1.0, 2.0])
    assert (pos.name, vel.name) == ("obj.robot.joints.pos", "obj.robot.joints.vel")
    assert isinstance(pos, Input) and isinstance(target, Output) and isinstance(state, Memory)
    assert target.name == "obj.robot.joints.target"
    assert state.wire_in == "memory.obj.robot.joints.state.in"
    assert joints.members == (pos, vel, target, state)
    assert joints.metadata == {"joint_names": ["a", "b"]}
    assert program.groups == (joints,)


def test_a_group_member_name_is_checked() -> None:
    with pytest.raises(DeclarationError, match=r"member of group 'g' name 'a.b c'"):
        make().group("g").input("a.b c", 2)


def test_a_group_member_may_not_be_declared_twice() -> None:
    group = make().group("g")
    group.input("x", 2)
    with pytest.raises(DeclarationError, match=r"output 'g.x' is declared twice"):
        group.output("x", 2)


def test_a_group_may_not_be_named_actions_by_way_of_a_member() -> None:
    with pytest.raises(DeclarationError, match=r"input name 'memory.x' is reserved"):
        make().group("memory").input("x", 2)


# -- stage decorators ---------------------------------------------------------------------------


def test_a_second_stage_of_the_same_kind_is_rejected() -> None:
    program = make()

    @program.apply_actions
    def first(v: object) -> dict[object, object]:
        return {}

    with pytest.raises(DeclarationError, match=r"already has a apply_actions stage .*second one"):

        @program.apply_actions
        def second(v: object) -> dict[object, object]:
            return {}


def test_a_stage_with_the_wrong_arguments_is_rejected() -> None:
    program = make()
    with pytest.raises(DeclarationError, match=r"takes 1 required arguments; expected 2"):

        @program.process_actions(n_actions=2)
        def process(v: object) -> dict[object, object]:
            return {}


@pytest.mark.parametrize("n_actions", [0, -2, 1.5, True])
def test_n_actions_must_be_a_positive_int(n_actions: object) -> None:
    with pytest.raises(DeclarationError, match=r"n_actions=...\) must be an int >= 1"):
        make().process_actions(n_actions=n_actions)  # type: ignore[arg-type]


@pytest.mark.parametrize("clip", [(1.0, -1.0), (0.0,), "x", (0, True)])
def test_observation_clip_must_be_an_ordered_pair(clip: object) -> None:
    with pytest.raises(DeclarationError, match=r"observations clip must be a pair \(lo, hi\)"):
        make().observations(clip=clip)  # type: ignore[arg-type]
