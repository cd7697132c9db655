# The ``show status`` grammar (1000/1011 lines, 0024 graceful-restart block, 0013 final
# line). Included by _birdparse.pyx.

_FINAL_STATUS = {
    "Daemon is up and running": "up",
    "Reconfiguration in progress": "reconfiguring",
    "Shutdown in progress": "shutting down",
}


@cython.final
cdef class _StatusGrammar:
    """The lines of one ``show status`` reply fill one ``BirdStatus``."""
    cdef object status

    cdef int start(self) except -1:
        self.status = BirdStatus()
        return 0

    cdef object take(self):
        """The status being built (None if none), handed over once."""
        st, self.status = self.status, None
        return st

    cdef int line(self, str text, bint final) except -1:
        st = self.status
        if st is None:
            st = self.status = BirdStatus()
        if text.startswith("BIRD "):
            st.version = text[5:].strip()
        elif text.startswith("Router ID is "):
            st.router_id = text[13:].strip()
        elif text.startswith("Hostname is "):
            st.hostname = text[12:].strip()
        elif text.startswith("Current server time is "):
            st.server_time = text[23:].strip()
        elif text.startswith("Last reboot on "):
            st.last_reboot = text[15:].strip()
        elif text.startswith("Last reconfiguration on "):
            st.last_reconfiguration = text[24:].strip()
        elif text.startswith("Graceful restart recovery in progress"):
            st.graceful_restart_recovery = True
        elif text.strip().startswith("Waiting for "):
            words = text.split()
            if len(words) > 2 and words[2].isdigit():
                st.gr_waiting = int(words[2])
            st.gr_details = st.gr_details + (text.strip(),)
        elif text.strip().startswith("Wait timer is "):
            st.gr_wait_timer = text.strip()[14:]
            st.gr_details = st.gr_details + (text.strip(),)
        elif text in _FINAL_STATUS:
            st.state = _FINAL_STATUS[text]
            st.state_text = text
        elif final:
            st.state_text = text
            st.state = None
        elif st.graceful_restart_recovery and text.startswith(" "):
            st.gr_details = st.gr_details + (text.strip(),)
        else:
            raise _Bad(f"unexpected line in show status: {text[:80]!r}")
        return 0

