"""The one registry helper: register by decorator, error on a duplicate name, helpful error on an unknown one."""

import pytest

from registry import Registry, RegistryError


def test_register_find_and_refuse_duplicates():
    things = Registry("loss")

    @things.register("focal")
    def focal():
        return "f"

    @things.register()
    class Dice:
        name = "dice"

    assert things["focal"] is focal and things.get("dice") is Dice and "dice" in things and list(things) == ["dice", "focal"]
    with pytest.raises(RegistryError, match="loss 'focal' is registered twice"):
        things.add("focal", lambda: None)
    things.add("focal", focal)  # the same object again (a module imported twice) is not a conflict
    with pytest.raises(RegistryError, match=r"unknown loss 'focall' \(did you mean 'focal'\?\); known: dice, focal"):
        things["focall"]
