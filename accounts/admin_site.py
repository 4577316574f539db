"""The staff admin: django-otp's OTPAdminSite, so every staff login (superuser, Support,
Billing) needs a second factor (TOTP or a recovery code) on top of the password, and a
session that logged in without one (through the customer login) is not let in."""

from django_otp.admin import OTPAdminSite

from accounts.forms import StaffLoginForm


class StaffAdminSite(OTPAdminSite):
    login_form = StaffLoginForm
    login_template = "admin/staff_login.html"

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)
