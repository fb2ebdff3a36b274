"""The city's own registers: their schemas as data, survey templates pre-filled from the
bundle, and the check of what comes back."""

from cityos.registers.schema import (
    BUILTIN_REGISTERS,
    Column,
    RegisterSchema,
    load_schema,
    registers_of,
)

__all__ = ["BUILTIN_REGISTERS", "Column", "RegisterSchema", "load_schema", "registers_of"]
