"""ReadOnlyFieldsOnceMixin: fields built once per class, bound per instance."""

from rest_framework import serializers

from llmapp.serializers import ReadOnlyFieldsOnceMixin


class Thing:
    def __init__(self, name, size):
        self.name, self.size = name, size


class ThingOut(ReadOnlyFieldsOnceMixin, serializers.Serializer):
    name = serializers.CharField()
    label = serializers.SerializerMethodField()
    built = 0

    def get_fields(self):
        ThingOut.built += 1
        return super().get_fields()

    def get_label(self, obj) -> str:
        return f"{self.context.get('prefix', '')}{obj.name}:{obj.size}"


def test_fields_are_built_once_per_class_and_bound_to_each_instance():
    ThingOut.built = 0
    ReadOnlyFieldsOnceMixin._field_prototypes.pop(ThingOut, None)
    first = ThingOut(Thing("a", 1), context={"prefix": "x-"})
    second = ThingOut(Thing("b", 2))

    assert first.data == {"name": "a", "label": "x-a:1"}
    assert second.data == {"name": "b", "label": "b:2"}  # not the first one's context
    assert ThingOut.built == 1
    assert first.fields["label"].parent is first
    assert second.fields["label"].parent is second
    prototype = ReadOnlyFieldsOnceMixin._field_prototypes[ThingOut]["label"]
    assert getattr(prototype, "parent", None) is None  # binding never touches the prototype


def test_many_serialises_every_object():
    data = ThingOut([Thing("a", 1), Thing("b", 2)], many=True).data
    assert [row["label"] for row in data] == ["a:1", "b:2"]
