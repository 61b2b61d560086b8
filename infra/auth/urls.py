from django.urls import path

from infra.auth import views

urlpatterns = [
    path("auth/refresh", views.RefreshView.as_view(), name="auth-refresh"),
    path("auth/logout", views.LogoutView.as_view(), name="auth-logout"),
    path("auth/demo-login", views.DemoLoginView.as_view(), name="auth-demo-login"),
    path("auth/providers", views.ProvidersView.as_view(), name="auth-providers"),
    path("auth/me", views.MeView.as_view(), name="auth-me"),
]
