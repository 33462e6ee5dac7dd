from rest_framework import serializers


class OrganizationOut(serializers.Serializer):
    id = serializers.UUIDField()
    slug = serializers.CharField()
    name = serializers.CharField()


class UserOut(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class MeOut(serializers.Serializer):
    organization = OrganizationOut()
    user = UserOut()
    role = serializers.CharField()
