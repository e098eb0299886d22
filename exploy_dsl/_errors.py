"""The one exception hierarchy for every user mistake exploy-dsl reports."""

from __future__ import annotations


class ExployDslError(Exception):
    """Base of every error caused by what the user wrote or passed in.

    Messages say what failed, which name, what was expected, what was received and the fix.
    The CLI prints them as one line and exits 2; anything else is a bug in exploy-dsl.
    """


class DeclarationError(ExployDslError):
    """A program declaration (name, shape, dtype, initial value, rate) is invalid."""


class StageError(ExployDslError):
    """A stage function could not be traced into a graph, or wrote something it may not."""


class ActorError(ExployDslError):
    """The actor network cannot be used: wrong sizes, wrong inputs, unreadable file."""


class CompileError(ExployDslError):
    """The program and actor cannot be compiled into a file (e.g. an op the target lacks)."""


class FileContractError(ExployDslError):
    """An ONNX file does not keep the deployment contract (missing key, symbolic dim, ...)."""


class RuntimeInputError(ExployDslError):
    """A runtime step was given a missing, unknown or mis-shaped input."""


class OutputPathError(ExployDslError):
    """An output path cannot be used: it is an input of the command, or too long a name."""


class ExployDslWarning(UserWarning):
    """Base of the warnings exploy-dsl gives about a program that compiles but may surprise."""


class ArticulationWarning(ExployDslWarning):
    """Joint targets go to another articulation than the one their joints are read from."""


class NonFiniteConstantError(CompileError):
    """A weight of the actor or a constant of a stage holds NaN or infinity (a diverged run)."""


class VerificationError(CompileError):
    """onnxruntime cannot load or run the compiled file, so nothing was written."""


class OnnxRuntimeLoadError(FileContractError):
    """onnxruntime cannot load a file (e.g. an op it does not know, from an older compile)."""


class TraceFileError(ExployDslError):
    """A recorded input trace (``.npz``) cannot be read, or does not fit the program."""


class WriteError(ExployDslError):
    """A file cannot be written (missing folder, a folder in the way, no permission).

    Whatever raised it left nothing behind: no partial file, no overwritten one.
    """


class MissingDependencyError(ExployDslError):
    """An optional package a feature needs is not installed (torch, matplotlib)."""


class UsageError(ExployDslError):
    """A command-line option or a tool's argument is invalid (e.g. ticks < 1, atol < 0)."""


class GraphInterpreterError(ExployDslError):
    """The NumPy reference interpreter cannot plan or run a graph (a stage's or an actor's).

    ``node`` names the failing node (``#3 Gather 'Gather_0'``) and ``reason`` says why, when
    the error comes from one node; messages for users lead with the stage, not the node.
    """

    def __init__(self, message: str, *, node: str | None = None, reason: str | None = None):
        super().__init__(message)
        self.node = node
        self.reason = reason


class SimError(ExployDslError):
    """A file and a MuJoCo model cannot be simulated together (a name, count or rate differs)."""


class SelfTestError(ExployDslError):
    """A file's embedded self-test failed: this onnxruntime does not reproduce its outputs."""
