// The website widget (web/widget/widget.js).
