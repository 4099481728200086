#pragma once
// A QOpenGLWidget that hosts a VTK render window. Debian's VTK Qt module is
// built for Qt 5, so ltlab embeds VTK itself: vtkGenericOpenGLRenderWindow
// renders with the widget's context into its own framebuffer, which paintGL
// blits into the widget's framebuffer. Mouse: drag rotates, wheel zooms,
// double-click resets the camera, a click (press and release in place) is
// reported for picking.

#include <QOpenGLWidget>

#include <vtkSmartPointer.h>

class vtkGenericOpenGLRenderWindow;
class vtkRenderer;

namespace ltlab::ui {

class VtkWidget : public QOpenGLWidget {
    Q_OBJECT
public:
    explicit VtkWidget(QWidget* parent = nullptr);
    ~VtkWidget() override;

    vtkRenderer* renderer() const;
    void resetCamera();
    // Renders off screen at `scale` times the widget's size and saves a PNG.
    bool savePng(const QString& path, int scale = 1);
    // PDF through GL2PS: the 3D scene as a raster image at `scale` times the
    // widget's size, 2D text as vector text (GeometryView writes the SVG).
    bool savePdf(const QString& path, int scale = 2);
    int framesRendered() const { return frames_; } // for benchmarks and tests
    // Widget coordinates (origin top left) to VTK display coordinates.
    QPointF toDisplay(const QPoint& widget_pos) const;

signals:
    void clicked(QPointF display_pos);
    void hovered(QPointF display_pos, QPoint global_pos); // the mouse moves with no button down

protected:
    void initializeGL() override;
    void resizeGL(int w, int h) override;
    void paintGL() override;
    void mousePressEvent(QMouseEvent* event) override;
    void mouseMoveEvent(QMouseEvent* event) override;
    void mouseReleaseEvent(QMouseEvent* event) override;
    void mouseDoubleClickEvent(QMouseEvent* event) override;
    void wheelEvent(QWheelEvent* event) override;

private:
    vtkSmartPointer<vtkGenericOpenGLRenderWindow> window_;
    vtkSmartPointer<vtkRenderer> renderer_;
    QPoint last_mouse_, press_pos_;
    bool initialized_ = false;
    int frames_ = 0;
};

} // namespace ltlab::ui
