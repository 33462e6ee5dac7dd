from rest_framework.routers import SimpleRouter

from prompts.api import PromptViewSet

router = SimpleRouter(trailing_slash=False)
router.register("prompts", PromptViewSet, basename="prompt")

urlpatterns = router.urls
